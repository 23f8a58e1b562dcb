//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds the folder's files
//! at compile time but does not watch the folder itself.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
