//! `modelyard`: the one binary — server (`up`, `serve`), admin, client and benchmark commands.

mod analyze;
mod bench;
mod bench_eval;
mod bench_jobs;
mod bench_predict;
mod client;
mod compare;
mod credentials;
mod eval;
mod jobs;
mod pull;
mod push;
mod repos;
mod server;
mod simulate;
mod worker;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "modelyard",
    version,
    about = "Host, run and compare deep-learning models and datasets"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the platform with embedded defaults (SQLite, local blobs) — the first thing to run.
    Up(server::UpArgs),
    /// Run the hub server alone.
    Serve(server::ServeArgs),
    /// Run a compute node that takes jobs from a hub.
    Worker(worker::WorkerArgs),
    /// Administration that works directly on the data directory or database.
    Admin {
        #[command(subcommand)]
        command: server::AdminCommand,
    },
    /// Save a server URL and token for the client commands.
    Login(credentials::LoginArgs),
    /// Upload a folder as a new commit of a repository (created if missing).
    Push(push::PushArgs),
    /// Download a repository at a branch, tag or commit into a folder.
    Pull(pull::PullArgs),
    /// List repositories.
    Repos(repos::ReposArgs),
    /// Submit a job; prints its id.
    Submit(jobs::SubmitArgs),
    /// How long a job would take on each kind of node, and when it would start (nothing runs).
    Predict(jobs::SubmitArgs),
    /// List your jobs.
    Jobs(jobs::JobsArgs),
    /// Print a job's output (`-f` follows it live).
    Logs(jobs::LogsArgs),
    /// Cancel a job.
    Cancel(jobs::CancelArgs),
    /// List the cluster's nodes.
    Nodes(jobs::NodesArgs),
    /// Analyse a local model file offline: parameters, MACs/FLOPs, inputs/outputs, ops, safety.
    Analyze(analyze::AnalyzeArgs),
    /// Evaluate every model on every dataset on the cluster (reusing verified results), then
    /// print them side by side.
    Compare(compare::CompareArgs),
    /// Print the verified leaderboard of a dataset, with self-reported claims apart.
    Leaderboard(compare::LeaderboardArgs),
    /// Evaluate an ONNX model on a dataset split: metrics, latency, and a record of what ran.
    Eval(eval::EvalArgs),
    /// Compare two models' structure (local files or NAMESPACE/NAME[@REVISION] on the hub).
    Diff(analyze::DiffArgs),
    /// Replay a job trace through the scheduling policies on a simulated cluster.
    Simulate(simulate::SimulateArgs),
    /// Measure the platform against the limits of this machine.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Up(args) => server::up(args).await,
            Command::Serve(args) => server::serve(args).await,
            Command::Worker(args) => worker::worker(args).await,
            Command::Admin { command } => server::admin(command).await,
            Command::Login(args) => credentials::login(args).await,
            Command::Push(args) => push::push(args).await,
            Command::Pull(args) => pull::pull(args).await,
            Command::Repos(args) => repos::repos(args).await,
            Command::Eval(a) => eval::eval(a).await,
            Command::Compare(a) => compare::compare(a).await,
            Command::Leaderboard(a) => compare::leaderboard(a).await,
            Command::Submit(a) => jobs::submit(a).await,
            Command::Predict(a) => jobs::predict(a).await,
            Command::Jobs(a) => jobs::jobs(a).await,
            Command::Logs(a) => jobs::logs(a).await,
            Command::Cancel(a) => jobs::cancel(a).await,
            Command::Nodes(a) => jobs::nodes(a).await,
            Command::Analyze(a) => analyze::analyze(a).await,
            Command::Diff(a) => analyze::diff(a).await,
            Command::Simulate(a) => simulate::run(a).await,
            Command::Bench { command } => bench::run(command).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
