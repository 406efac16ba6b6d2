//! `weft-benches`: see the library's documentation and `--help`.

#![forbid(unsafe_code)]

use std::process::ExitCode;
use weft_benches::{parse_args, run, Command, USAGE};

fn main() -> ExitCode {
    match parse_args(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Command::Run(opts)) => match run(&opts, &mut std::io::stdout().lock()) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("weft-benches: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("weft-benches: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
