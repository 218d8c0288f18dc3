// Live output of a running job: follows its log stream (server-sent events) into the page.
const log = document.getElementById("log");
const es = new EventSource("/api/jobs/" + log.dataset.job + "/logs?follow=true");
es.addEventListener("log", (e) => {
  for (const line of e.data.split("\n")) {
    try {
      log.textContent += JSON.parse(line).text;
    } catch (_) {}
  }
});
es.addEventListener("end", (e) => {
  const end = JSON.parse(e.data);
  document.getElementById("state").textContent = end.state;
  es.close();
});
