//! The `tlstap` binary: a thin layer over the library. Errors become one line
//! on stderr and a non-zero exit here; a closed stdout is a clean exit.

mod cli;

use clap::Parser;

/// mimalloc instead of glibc's malloc: the workers allocate and free a few
/// hundred small blocks per session (docs/performance.md has the figures).
/// Built without transparent huge pages (`no_thp`): with them a run held
/// 80-95 MiB where glibc holds 31 MiB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e` (include/mimalloc.h of
/// libmimalloc-sys 0.1.49, pinned in Cargo.toml: the binding has no name for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() {
    // Freed memory goes back to the OS after 10 ms instead of 1 s: under a SYN
    // flood the evicted flows' memory was held long enough to add 50-60 %
    // to the peak (glibc: 102 MiB at --memcap 64M; 1 s: 160; 10 ms: 108).
    // SAFETY: mi_option_set range-checks the id and stores one value into
    // mimalloc's option table; no other thread exists yet to race with it.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10) };
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

#[cfg(test)]
mod tests {
    /// The option id is a bare number: its default (1000 ms in mimalloc v3) tells it
    /// from its neighbours (eager-commit delay 1, NUMA nodes 0) if the enum moves.
    #[test]
    fn purge_delay_option_id_names_the_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            eprintln!("skipped: MIMALLOC_PURGE_DELAY is set");
            return;
        }
        // SAFETY: reads one option value.
        let value = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(value, 1000);
    }
}
