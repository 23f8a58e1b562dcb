//! Transactions belong to the domain (`../shared/DESIGN.md`): a service begins one through
//! the `UnitOfWork` port and composes plain statements. Only the unit-of-work adapter may
//! open a transaction; a repository that opened its own would be a business rule moving
//! back into SQL.

use std::path::Path;

/// What opening a transaction looks like with sqlx, or with this crate's retrying helper.
const OPENERS: [&str; 4] = [".begin().await", "begin(&self.pool)", "pool::begin(", "BEGIN"];

#[test]
fn only_the_unit_of_work_adapter_begins_transactions() {
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    for entry in std::fs::read_dir(&sources).expect("the crate's sources are readable") {
        let path = entry.expect("a directory entry").path();
        if path.file_name().is_some_and(|name| name == "unit_of_work.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a source file is readable");
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if OPENERS.iter().any(|opener| code.contains(opener)) {
                offenders.push(format!("{}:{}: {}", path.display(), number + 1, line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "transactions opened outside the unit of work:\n{}", offenders.join("\n"));
}
