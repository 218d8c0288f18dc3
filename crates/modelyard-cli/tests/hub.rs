//! The hub over real HTTP: repositories, commits, downloads, tokens and privacy.

mod common;

use common::Server;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn code(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("x-error-code")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn repo_lifecycle_listing_and_cards() {
    let s = Server::start();
    let alice = s.user("alice");
    let r = s.create_repo(&alice, "alice/m1", "model", false).await;
    assert_eq!(r.status(), 200);
    let url = r.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(url, format!("{}/alice/m1", s.url));
    // Creating it again: 409 that still carries the URL (the Hub client's exist_ok relies on it).
    let again = s.create_repo(&alice, "alice/m1", "model", false).await;
    assert_eq!(again.status(), 409);
    assert_eq!(again.json::<Value>().await.unwrap()["url"], url);
    // Bad names are refused.
    for bad in ["alice/a--b", "alice/x..y", "alice/-x", "bob/mine"] {
        let r = s.create_repo(&alice, bad, "model", false).await;
        assert!(
            r.status() == 400 || r.status() == 403,
            "{bad}: {}",
            r.status()
        );
    }

    // A card with metadata is parsed; a malformed one is accepted and reported.
    let card = b"---\nlicense: apache-2.0\ntags: [vision, demo]\npipeline_tag: image-classification\n---\n# M1\n";
    assert_eq!(
        s.commit_files(&alice, "alice/m1", &[("README.md", card)], None)
            .await
            .status(),
        200
    );
    let info: Value = s
        .get("/api/models/alice/m1", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["pipeline_tag"], "image-classification");
    assert_eq!(info["tags"], json!(["demo", "vision"]));
    assert_eq!(info["cardData"]["license"], "apache-2.0");
    assert!(info["sha"].as_str().unwrap().len() == 40);
    assert!(info["lastModified"].as_str().unwrap().ends_with('Z'));

    s.create_repo(&alice, "alice/m2", "model", false).await;
    let broken = s
        .commit_files(
            &alice,
            "alice/m2",
            &[("README.md", b"---\nlicense: [oops\n---\nhi\n")],
            None,
        )
        .await;
    assert_eq!(broken.status(), 200);
    let info2: Value = s
        .get("/api/models/alice/m2", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        info2["cardError"]
            .as_str()
            .unwrap()
            .contains("card metadata"),
        "{info2}"
    );
    assert_eq!(s.get("/alice/m2", None).await.status(), 200);

    // Listing: search, author, tag, dataset kind, cursor pagination with absolute Link.
    s.create_repo(&alice, "alice/d1", "dataset", false).await;
    for i in 0..4 {
        s.create_repo(&alice, &format!("alice/extra{i}"), "model", false)
            .await;
    }
    let names = |v: Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let found = names(
        s.get("/api/models?search=M1", None)
            .await
            .json()
            .await
            .unwrap(),
    );
    assert_eq!(found, ["alice/m1"]);
    let tagged = names(
        s.get("/api/models?filter=vision", None)
            .await
            .json()
            .await
            .unwrap(),
    );
    assert_eq!(tagged, ["alice/m1"]);
    let datasets = names(
        s.get("/api/datasets?author=alice", None)
            .await
            .json()
            .await
            .unwrap(),
    );
    assert_eq!(datasets, ["alice/d1"]);
    let mut seen = Vec::new();
    let mut next = Some(format!("{}/api/models?author=alice&limit=2", s.url));
    while let Some(url) = next {
        let resp = s.http.get(&url).send().await.unwrap();
        next = resp.headers().get("link").map(|l| {
            let l = l.to_str().unwrap();
            assert!(l.starts_with(&format!("<{}/api/models?", s.url)), "{l}");
            l[1..l.find('>').unwrap()].to_owned()
        });
        let page = names(resp.json().await.unwrap());
        assert!(page.len() <= 2);
        seen.extend(page);
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "alice/extra0",
            "alice/extra1",
            "alice/extra2",
            "alice/extra3",
            "alice/m1",
            "alice/m2"
        ]
    );

    // Rename, then delete.
    let moved = s
        .req(Method::POST, "/api/repos/move", Some(&alice))
        .json(&json!({"fromRepo": "alice/m2", "toRepo": "alice/m2-renamed", "type": "model"}))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 200);
    assert_eq!(s.get("/api/models/alice/m2", None).await.status(), 404);
    assert_eq!(
        s.get("/api/models/alice/m2-renamed", None).await.status(),
        200
    );
    let del = s
        .req(Method::DELETE, "/api/repos/delete", Some(&alice))
        .json(&json!({"name": "m2-renamed", "organization": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    let gone = s.get("/api/models/alice/m2-renamed", None).await;
    assert_eq!(
        (gone.status(), code(&gone)),
        (StatusCode::NOT_FOUND, "RepoNotFound".into())
    );
}

#[tokio::test]
async fn commits_branches_tags_and_trees() {
    let s = Server::start();
    let a = s.user("alice");
    s.create_repo(&a, "alice/m", "model", false).await;
    let c1 = s
        .commit_files(
            &a,
            "alice/m",
            &[
                ("a/b/c.txt", b"one"),
                ("a/d.txt", b"two"),
                ("top.txt", b"top"),
            ],
            None,
        )
        .await;
    assert_eq!(c1.status(), 200);
    let c1: Value = c1.json().await.unwrap();
    let c1 = c1["commitOid"].as_str().unwrap().to_owned();
    assert!(
        c1.len() == 40
            && c1
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );

    // Tag c1, then change the branch: the tag still sees the old content.
    let tag = s
        .req(Method::POST, "/api/models/alice/m/tag/main", Some(&a))
        .json(&json!({"tag": "v1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(tag.status(), 200);
    let dup = s
        .req(Method::POST, "/api/models/alice/m/tag/main", Some(&a))
        .json(&json!({"tag": "v1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), 409);
    assert_eq!(
        s.commit_files(&a, "alice/m", &[("top.txt", b"changed")], Some(&c1))
            .await
            .status(),
        200
    );
    let old = s
        .get("/alice/m/resolve/v1/top.txt", None)
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(&old[..], b"top");
    let new = s
        .get("/alice/m/resolve/main/top.txt", None)
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(&new[..], b"changed");
    let by_id = s
        .get(&format!("/alice/m/resolve/{c1}/top.txt"), None)
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(&by_id[..], b"top");

    // A stale parent is refused with 409 and changes nothing.
    let head = s.head("alice/m", None).await;
    let stale = s
        .commit_files(&a, "alice/m", &[("top.txt", b"lost?")], Some(&c1))
        .await;
    assert_eq!(stale.status(), 409);
    assert_eq!(s.head("alice/m", None).await, head);

    // Branches: create from a tag, commit on it, delete it.
    let br = s
        .req(Method::POST, "/api/models/alice/m/branch/dev", Some(&a))
        .json(&json!({"startingPoint": "v1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(br.status(), 200);
    let refs: Value = s
        .get("/api/models/alice/m/refs", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refs["branches"].as_array().unwrap().len(), 2);
    assert_eq!(refs["tags"][0]["targetCommit"], c1.as_str());
    assert_eq!(
        s.req(Method::DELETE, "/api/models/alice/m/branch/dev", Some(&a))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let gone = s.get("/api/models/alice/m/revision/dev", None).await;
    assert_eq!(code(&gone), "RevisionNotFound");

    // Trees: one folder or recursive, at any revision; slashes may arrive encoded.
    let top: Value = s
        .get("/api/models/alice/m/tree/v1?recursive=false", None)
        .await
        .json()
        .await
        .unwrap();
    let kinds: Vec<String> = top
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["type"].as_str().unwrap(),
                e["path"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        kinds,
        ["file:.gitattributes", "directory:a", "file:top.txt"]
    );
    let sub: Value = s
        .get("/api/models/alice/m/tree/v1/a%2Fb?recursive=True", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sub[0]["path"], "a/b/c.txt");
    assert_eq!(sub[0]["oid"], modelyard_core::hash::git_blob_sha1(b"one"));
    let missing = s.get("/api/models/alice/m/tree/v1/nope", None).await;
    assert_eq!(code(&missing), "EntryNotFound");

    // History, newest first.
    let hist: Value = s
        .get("/api/models/alice/m/commits/main", None)
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = hist
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[1], c1);
    assert!(hist[0]["date"].as_str().unwrap().ends_with('Z'));

    // Deleting files and folders.
    let body = [
        json!({"key": "header", "value": {"summary": "rm"}}).to_string(),
        json!({"key": "deletedFolder", "value": {"path": "a/"}}).to_string(),
    ]
    .join("\n");
    let rm = s
        .req(Method::POST, "/api/models/alice/m/commit/main", Some(&a))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(rm.status(), 200);
    let body = [
        json!({"key": "header", "value": {"summary": "rm"}}).to_string(),
        json!({"key": "deletedFile", "value": {"path": "no-such-file"}}).to_string(),
    ]
    .join("\n");
    let rm = s
        .req(Method::POST, "/api/models/alice/m/commit/main", Some(&a))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (rm.status(), code(&rm)),
        (StatusCode::NOT_FOUND, "EntryNotFound".into())
    );
}

#[tokio::test]
async fn concurrent_commits_on_one_branch_one_wins() {
    let s = Server::start();
    let a = s.user("alice");
    s.create_repo(&a, "alice/race", "model", false).await;
    for round in 0..5 {
        let parent = s.head("alice/race", None).await;
        let f1 = format!("one-{round}.txt");
        let f2 = format!("two-{round}.txt");
        let files1: [(&str, &[u8]); 1] = [(&f1, b"1")];
        let files2: [(&str, &[u8]); 1] = [(&f2, b"2")];
        let (r1, r2) = tokio::join!(
            s.commit_files(&a, "alice/race", &files1, Some(&parent)),
            s.commit_files(&a, "alice/race", &files2, Some(&parent)),
        );
        let mut statuses = [r1.status().as_u16(), r2.status().as_u16()];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "round {round}");
        let head = s.head("alice/race", None).await;
        let hist: Value = s
            .get(&format!("/api/models/alice/race/commits/{head}"), None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            hist[1]["id"],
            parent.as_str(),
            "the winner sits directly on the parent"
        );
    }
}

#[tokio::test]
async fn bad_paths_are_refused() {
    let s = Server::start();
    let a = s.user("alice");
    s.create_repo(&a, "alice/m", "model", false).await;
    let head = s.head("alice/m", None).await;
    let long_name = "x".repeat(300);
    let long_path = "d/".repeat(600) + "f";
    for bad in [
        "../escape",
        "a/../../b",
        "/etc/passwd",
        "a\\b",
        "nul\0byte",
        ".git/config",
        "a//b",
        &long_name,
        &long_path,
    ] {
        let r = s.commit_files(&a, "alice/m", &[(bad, b"x")], None).await;
        assert_eq!(r.status(), 400, "{bad:?}");
        let msg: Value = r.json().await.unwrap();
        assert!(
            msg["error"]["message"].as_str().unwrap().contains("path"),
            "{msg}"
        );
    }
    assert_eq!(s.head("alice/m", None).await, head, "nothing was committed");
    let r = s
        .get("/alice/m/resolve/main/..%2F..%2Fetc%2Fpasswd", None)
        .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn downloads_have_etags_ranges_and_hub_headers() {
    let s = Server::start();
    let a = s.user("alice");
    s.create_repo(&a, "alice/m", "model", false).await;
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    s.commit_files(&a, "alice/m", &[("w/file name é.bin", &data)], None)
        .await;
    let head = s.head("alice/m", None).await;
    let path = "/alice/m/resolve/main/w/file%20name%20%C3%A9.bin";

    let h = s.req(Method::HEAD, path, None).send().await.unwrap();
    assert_eq!(h.status(), 200);
    assert_eq!(h.headers()["x-repo-commit"], head.as_str());
    assert_eq!(h.headers()["content-length"], "100000");
    let etag = h.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(
        etag,
        format!("\"{}\"", modelyard_core::hash::git_blob_sha1(&data))
    );

    let full = s.get(path, None).await.bytes().await.unwrap();
    assert_eq!(&full[..], &data[..]);
    let part = s
        .req(Method::GET, path, None)
        .header("range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], "bytes 1000-1999/100000");
    assert_eq!(&part.bytes().await.unwrap()[..], &data[1000..2000]);
    let tail = s
        .req(Method::GET, path, None)
        .header("range", "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(&tail.bytes().await.unwrap()[..], &data[99_990..]);
    let bad = s
        .req(Method::GET, path, None)
        .header("range", "bytes=200000-")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 416);
    let cached = s
        .req(Method::GET, path, None)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);

    let missing = s.get("/alice/m/resolve/main/nope.txt", None).await;
    assert_eq!(
        (missing.status(), code(&missing)),
        (StatusCode::NOT_FOUND, "EntryNotFound".into())
    );
    assert_eq!(missing.headers()["x-repo-commit"], head.as_str());
    assert_eq!(
        code(&s.get("/alice/m/resolve/nobranch/x", None).await),
        "RevisionNotFound"
    );
    assert_eq!(
        code(&s.get("/alice/nothere/resolve/main/x", None).await),
        "RepoNotFound"
    );
}

#[tokio::test]
async fn tokens_and_scopes() {
    let s = Server::start();
    let a = s.user("alice");
    // No token, or a wrong one.
    assert_eq!(
        s.create_repo("", "alice/x", "model", false).await.status(),
        401
    );
    assert_eq!(
        s.get("/api/models", Some("my_not_a_real_token"))
            .await
            .status(),
        401
    );
    assert_eq!(s.get("/api/whoami-v2", None).await.status(), 401);
    let me: Value = s
        .get("/api/whoami-v2", Some(&a))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "alice");

    // A read-only token reads but cannot write.
    let read: Value = s
        .req(Method::POST, "/api/tokens", Some(&a))
        .json(&json!({"scope": "read", "label": "ro"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ro = read["token"].as_str().unwrap();
    assert_eq!(s.get("/api/whoami-v2", Some(ro)).await.status(), 200);
    assert_eq!(
        s.create_repo(ro, "alice/x", "model", false).await.status(),
        403
    );

    // An expired token is refused.
    let short: Value = s
        .req(Method::POST, "/api/tokens", Some(&a))
        .json(&json!({"expires_in": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let short = short["token"].as_str().unwrap();
    assert_eq!(s.get("/api/whoami-v2", Some(short)).await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let expired = s.get("/api/whoami-v2", Some(short)).await;
    assert_eq!(expired.status(), 401);
    assert!(expired.text().await.unwrap().contains("expired"));

    // Revoked tokens stop working; tokens are listed without their secret.
    let list: Value = s.get("/api/tokens", Some(&a)).await.json().await.unwrap();
    assert!(list.as_array().unwrap().len() >= 3);
    assert!(!list.to_string().contains(ro));
    let id = read["id"].as_str().unwrap();
    assert_eq!(
        s.req(Method::DELETE, &format!("/api/tokens/{id}"), Some(&a))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(s.get("/api/whoami-v2", Some(ro)).await.status(), 401);

    // Sign-up and password login give a working token; a wrong password does not.
    let up = s
        .req(Method::POST, "/api/signup", None)
        .json(&json!({"username": "carol", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), 200);
    let bad = s
        .req(Method::POST, "/api/login", None)
        .json(&json!({"username": "carol", "password": "wrong pass"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let ok: Value = s
        .req(Method::POST, "/api/login", None)
        .json(&json!({"username": "carol", "password": "correct horse"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let me: Value = s
        .get("/api/whoami-v2", ok["token"].as_str())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "carol");
    let reserved = s
        .req(Method::POST, "/api/signup", None)
        .json(&json!({"username": "api", "password": "whatever123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reserved.status(), 400);
}

#[tokio::test]
async fn private_repos_are_invisible_to_others_on_every_path() {
    let s = Server::start();
    let owner = s.user("owner");
    let other = s.user("other");
    assert_eq!(
        s.create_repo(&owner, "owner/secret", "model", true)
            .await
            .status(),
        200
    );
    s.commit_files(
        &owner,
        "owner/secret",
        &[
            ("README.md", b"---\ntags: [hidden]\n---\nsecret\n"),
            ("w.bin", b"weights"),
        ],
        None,
    )
    .await;
    let head = s.head("owner/secret", Some(&owner)).await;
    let paths = [
        "/api/models/owner/secret".to_owned(),
        "/api/models/owner/secret/revision/main".to_owned(),
        "/api/models/owner/secret/tree/main".to_owned(),
        "/api/models/owner/secret/commits/main".to_owned(),
        "/api/models/owner/secret/refs".to_owned(),
        "/owner/secret/resolve/main/w.bin".to_owned(),
        format!("/owner/secret/resolve/{head}/w.bin"),
        "/owner/secret".to_owned(),
    ];
    for p in &paths {
        assert_eq!(
            s.get(p, Some(&owner)).await.status(),
            200,
            "owner reads {p}"
        );
        for (who, token) in [("other", Some(other.as_str())), ("anonymous", None)] {
            let r = s.get(p, token).await;
            assert_eq!(r.status(), 404, "{who} must not see {p}");
            if p.starts_with("/api") || p.contains("/resolve/") {
                assert_eq!(code(&r), "RepoNotFound", "{who} {p}");
            }
            let body = r.text().await.unwrap();
            assert!(
                !body.contains("weights") && !body.contains(&head),
                "{who} {p}"
            );
        }
    }
    let admin_sees = s.get("/api/models/owner/secret", Some(&s.admin)).await;
    assert_eq!(admin_sees.status(), 200);
    for (token, visible) in [
        (Some(owner.as_str()), true),
        (Some(other.as_str()), false),
        (None, false),
    ] {
        for q in [
            "/api/models",
            "/api/models?search=secret",
            "/api/models?author=owner",
            "/api/models?filter=hidden",
        ] {
            let list = s.get(q, token).await.text().await.unwrap();
            assert_eq!(list.contains("owner/secret"), visible, "{q} as {token:?}");
        }
        let home = s.get("/", token).await.text().await.unwrap();
        assert!(!home.contains("owner/secret") || visible, "home page");
    }
    // Others cannot write either, and cannot learn that it exists.
    let w = s
        .commit_files(&other, "owner/secret", &[("x", b"x")], None)
        .await;
    assert_eq!(
        (w.status(), code(&w)),
        (StatusCode::NOT_FOUND, "RepoNotFound".into())
    );
    // Making it public opens it.
    let put = s
        .req(
            Method::PUT,
            "/api/models/owner/secret/settings",
            Some(&owner),
        )
        .json(&json!({"private": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    assert_eq!(
        s.get("/owner/secret/resolve/main/w.bin", None)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn reads_are_cached_per_viewer_but_never_stale_after_a_write_or_private() {
    let s = Server::start();
    let alice = s.user("alice");
    assert_eq!(
        s.create_repo(&alice, "alice/open", "model", false)
            .await
            .status(),
        200
    );
    assert_eq!(
        s.create_repo(&alice, "alice/hidden", "model", true)
            .await
            .status(),
        200
    );
    let info = |path: &'static str| {
        let s = &s;
        async move {
            let r = s.get(path, None).await;
            assert_eq!(r.status(), 200, "{path}");
            r.json::<Value>().await.unwrap()
        }
    };
    // Twice anonymously (the second from the cache), then a commit: the next read shows it.
    let before = info("/api/models/alice/open").await["sha"].clone();
    assert_eq!(info("/api/models/alice/open").await["sha"], before);
    let listed = info("/api/models?author=alice").await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(
        s.commit_files(&alice, "alice/open", &[("README.md", b"# new\n")], None)
            .await
            .status(),
        200
    );
    let after = info("/api/models/alice/open").await["sha"].clone();
    assert_ne!(after, before, "a write empties the cache");
    assert_eq!(after, s.head("alice/open", Some(&alice)).await);
    // The owner's own (authenticated) listing is never served to anyone else.
    let own: Value = s
        .get("/api/models?author=alice", Some(&alice))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(own.as_array().unwrap().len(), 2);
    let anon = info("/api/models?author=alice").await;
    assert_eq!(anon.as_array().unwrap().len(), 1, "{anon}");
    assert_eq!(s.get("/api/models/alice/hidden", None).await.status(), 404);
    // Authenticated reads are cached per viewer: alice's again (from the cache) still shows
    // her private repo, bob's, right after, never does.
    let bob = s.user("bob");
    let listed_by = |token: &str| {
        let (s, token) = (&s, token.to_owned());
        async move {
            let r = s.get("/api/models?author=alice", Some(&token)).await;
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    for _ in 0..2 {
        let (status, body) = listed_by(&alice).await;
        assert_eq!(status, 200);
        assert!(body.contains("alice/hidden"), "{body}");
        let (status, body) = listed_by(&bob).await;
        assert_eq!(status, 200);
        assert!(!body.contains("alice/hidden"), "{body}");
        assert_eq!(
            s.get("/api/models/alice/hidden", Some(&bob)).await.status(),
            404
        );
    }
    // A bad token is refused, not answered from anyone's entry; a revoked one at once.
    assert_eq!(listed_by("my_not-a-token").await.0, 401);
    let extra: Value = s
        .req(reqwest::Method::POST, "/api/tokens", Some(&alice))
        .json(&json!({"label": "short-lived", "scope": "read"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let extra_token = extra["token"].as_str().unwrap();
    assert_eq!(listed_by(extra_token).await.0, 200);
    let revoked = s
        .req(
            reqwest::Method::DELETE,
            &format!("/api/tokens/{}", extra["id"].as_str().unwrap()),
            Some(&alice),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(
        listed_by(extra_token).await.0,
        401,
        "revoked tokens stop at once"
    );
    // Making the repo public through the settings API shows at once too.
    let r = s
        .req(
            reqwest::Method::PUT,
            "/api/models/alice/hidden/settings",
            Some(&alice),
        )
        .json(&json!({"private": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        info("/api/models?author=alice")
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
}
