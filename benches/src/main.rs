//! `weft-benches`: see the library's documentation and `--help`.

#![forbid(unsafe_code)]

use std::process::ExitCode;
use weft_benches::{parse_args, run, Command, USAGE};

fn main() -> ExitCode {
    // Hidden subcommand: a child side of W6/W7 (many connections in a process of its own).
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(weft_benches::w67::fleet::CHILD_ARG) {
        return match weft_benches::w67::fleet::child(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("weft-benches child: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match parse_args(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Command::ChartFrom { json, chart }) => {
            match weft_benches::chart::from_json(&json, &chart) {
                Ok((panels, rows)) => {
                    println!(
                        "chart: {} ({panels} panels from {rows} rows of {})",
                        chart.display(),
                        json.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("weft-benches: {e}");
                    ExitCode::FAILURE
                }
            }
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
