//! The uploads suite (`upload_suite/`) with the bytes in the app's database
//! (the default `upload_storage`).

use api_tests::Storage;

fn storage() -> Storage {
    Storage::Database
}

#[path = "upload_suite/mod.rs"]
mod suite;
