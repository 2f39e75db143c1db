//! The `tlstap` binary: a thin layer over the library. Errors become one line
//! on stderr and a non-zero exit here; a closed stdout is a clean exit.

mod cli;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Read(args) => cli::read(args),
        cli::Command::Live(args) => cli::live(args),
        cli::Command::Policy(cli::PolicyCommand::Check { file }) => cli::policy_check(&file),
        cli::Command::Inventory(cli::InventoryArgs {
            command: Some(cli::InventoryCommand::Ingest(args)),
            ..
        }) => cli::ingest(args),
        cli::Command::Inventory(cli::InventoryArgs {
            path: Some(path),
            json,
            ..
        }) => cli::inventory(&path, json),
        // clap requires the path when there is no subcommand.
        cli::Command::Inventory(_) => Ok(2),
        cli::Command::Report(args) => cli::report(args),
        cli::Command::Completions { shell } => cli::completions(shell),
        cli::Command::Man { dir } => cli::man(dir.as_deref()),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            // One line: the context chain joined, e.g. "--internal: \"x\" is not a network".
            let message = error
                .chain()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(": ");
            eprintln!("tlstap: error: {message}");
            std::process::exit(1);
        }
    }
}
