// `sqlx::migrate!` embeds the migrations when this crate compiles; without this, a new `.sql`
// file would not rebuild it and the binary would run without the migration.
fn main() {
    println!("cargo:rerun-if-changed=../../../migrations");
}
