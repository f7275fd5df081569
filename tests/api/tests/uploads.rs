//! The uploads suite (`upload_suite/`) with the bytes in MySQL
//! (`upload_storage = mysql`, the default).

use api_tests::Storage;

fn storage() -> Storage {
    Storage::Mysql
}

#[path = "upload_suite/mod.rs"]
mod suite;
