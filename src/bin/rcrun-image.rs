//! `rcrun-image`: rcrun's command line with the image commands (`image`,
//! `run --image`), which `rcrun` hands over to it (see src/main.rs).
//! Every other command works here too, as in `rcrun`.

#[path = "../cli/mod.rs"]
mod cli;

fn main() {
    cli::main::<true>()
}
