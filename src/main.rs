//! The `latentflow` binary: with no subcommand it opens the desktop app; subcommands run
//! headless (see `latentflow --help`).

use clap::Parser;
use latentflow::cli::{Cli, run};

fn main() -> std::process::ExitCode {
    latentflow::alloc::tune();
    // SAFETY: the first thing in main; no other thread has been started.
    unsafe { latentflow::nn::pin_thread_count() };
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            if matches!(
                e.downcast_ref::<latentflow::Error>(),
                Some(latentflow::Error::Cancelled)
            ) {
                eprintln!(
                    "interrupted; the last checkpoint is kept (run the same command to resume)"
                );
                return std::process::ExitCode::from(130);
            }
            // One line: candle appends a backtrace to its messages when RUST_BACKTRACE is
            // set; the message itself is the first line.
            let message = format!("{e:#}");
            eprintln!(
                "error: {}",
                message.lines().next().unwrap_or("unknown error").trim_end()
            );
            std::process::ExitCode::FAILURE
        }
    }
}
