//! The `tandem` command line: a thin shell over the library.

fn main() {
    println!("tandem");
}
