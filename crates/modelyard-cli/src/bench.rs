//! `modelyard bench ...`: measurements printed as tables.

use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Upload and download MB/s of one large file, against openssl and nginx on this machine.
    Transfer {
        /// File size in MiB.
        #[arg(long, default_value_t = 1024)]
        size_mib: u64,
    },
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Transfer { size_mib } => {
            anyhow::bail!("bench transfer ({size_mib} MiB) is not built yet")
        }
    }
}
