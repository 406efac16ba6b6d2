//! Shows how a target reads an input, then runs it (the panic, if any, follows):
//! `cargo run --example show -- TARGET FILE`.

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(target), Some(file)) = (args.next(), args.next()) else {
        eprintln!("usage: show TARGET FILE");
        std::process::exit(2);
    };
    let data = std::fs::read(&file).expect("readable input");
    println!("{}", weft_fuzz::describe(&target, &data));
    if !weft_fuzz::run(&target, &data) {
        eprintln!("no target {target}");
        std::process::exit(2);
    }
    println!("no failure");
}
