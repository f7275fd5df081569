//! A component's static `files`, as `spin up` (Spin 4.0.2) mounts them by
//! default: copied once, at start and before serving, into a `spinup-`
//! working directory under the system's temporary directory, at
//! `assets/<component id>/`, which the component sees as its only WASI
//! preopen, `/`, read-only. The copy lives as long as the host and is
//! deleted after it; a source edited later is not seen until a restart.
//!
//! The copy follows Spin's loader (`crates/loader/src/local.rs`) step by
//! step, quirks included:
//! - `"file"` lands at its own path; `"dir"` copies every file under it
//!   (hidden ones too, following symbolic links) to `dir/` *joined with its
//!   path from the app directory*, so `"static"` puts `static/a.txt` at
//!   `/static/static/a.txt` (Spin joins the entry twice);
//! - `{ source = "dir", destination = "/x" }` puts the directory's files
//!   under `/x`, `{ source = "file", destination = "/x/y" }` the file at
//!   `/x/y`;
//! - only files are copied (an empty directory under a copied one does not
//!   appear), and a source must lie in the app directory — a lexical check,
//!   as Spin's: `../x` passes, an absolute path elsewhere does not;
//! - an entry `..` or `.` (or ending in `/..`, `/.`), a missing source, and
//!   a destination that cannot be a file name fail with Spin's messages.
//!
//! Not implemented, and refused at start rather than ignored: glob patterns
//! (an entry that is not an existing path and holds `*`, `?`, `[` or `]`,
//! which Spin would expand) and a non-empty `exclude_files` on a component
//! with `files`. Spin copies a component's entries concurrently; the host
//! copies them in order, so where two entries write the same guest path the
//! later one wins.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

use crate::manifest::{FilesMount, Manifest};

/// The `spinup-` working directory; removed, with everything in it, on drop.
#[derive(Debug)]
pub struct WorkingDir(tempfile::TempDir);

impl WorkingDir {
    /// A fresh `spinup-…` directory under the system's temporary directory.
    pub fn create() -> anyhow::Result<Self> {
        tempfile::Builder::new()
            .prefix("spinup-")
            .tempdir()
            .map(Self)
            .context("cannot create the working directory")
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// Every component's copied files: the working directory that holds them
/// and, per component with `files`, the directory to preopen as `/`.
#[derive(Debug, Default)]
pub struct ComponentFiles {
    /// `None` when no component has `files` (nothing is created then).
    pub working_dir: Option<WorkingDir>,
    /// Component id to its `assets/<id>` directory.
    pub roots: std::collections::HashMap<String, PathBuf>,
}

/// Copies every component's `files` into a new working directory, as
/// `spin up` does before serving. Fails on the first entry that Spin would
/// refuse, or that the host does not implement.
pub fn copy_all(manifest: &Manifest) -> anyhow::Result<ComponentFiles> {
    let mut out = ComponentFiles::default();
    if manifest.components.values().all(|c| c.files.is_empty()) {
        return Ok(out);
    }
    // Spin absolutizes the manifest's directory (without resolving links).
    let dir = if manifest.dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        manifest.dir.as_path()
    };
    let app_root = std::path::absolute(dir)
        .with_context(|| format!("Invalid manifest dir `{}`", dir.display()))?;
    let working_dir = WorkingDir::create()?;
    let copier = Copier {
        app_root,
        assets_root: working_dir.path().join("assets"),
    };
    for (id, def) in &manifest.components {
        if def.files.is_empty() {
            // As Spin: no `files`, no preopen, and `exclude_files` unused.
            continue;
        }
        let root = copier
            .copy_component(id, &def.files, &def.exclude_files)
            .with_context(|| format!("Failed to load component `{id}`"))?;
        out.roots.insert(id.clone(), root);
    }
    out.working_dir = Some(working_dir);
    Ok(out)
}

/// Spin's `FilesMountStrategy::Copy`, one app.
struct Copier {
    /// The manifest's directory, absolute.
    app_root: PathBuf,
    /// `<working dir>/assets`.
    assets_root: PathBuf,
}

impl Copier {
    /// Copies one component's entries into `assets/<id>`, returned.
    fn copy_component(
        &self,
        id: &str,
        files: &[FilesMount],
        exclude_files: &[String],
    ) -> anyhow::Result<PathBuf> {
        if !exclude_files.is_empty() {
            bail!(
                "`exclude_files` ({exclude_files:?}) is not implemented by the test host: \
                 remove it, or list only the files to include"
            );
        }
        let root = self.assets_root.join(id);
        // Every entry Spin copies creates its directory; with this one made
        // first, the preopen exists even if an entry copied nothing.
        std::fs::create_dir_all(&root)
            .with_context(|| format!("Failed to create directory \"{}\"", root.display()))?;
        for mount in files {
            match mount {
                FilesMount::Pattern(pattern) => self.copy_glob_or_path(pattern, &root)?,
                FilesMount::Placement {
                    source,
                    destination,
                } => {
                    let dest = root.join(destination.trim_start_matches('/'));
                    self.copy_file_or_directory(Path::new(source), &dest, destination)?;
                }
            }
        }
        Ok(root)
    }

    /// A plain-string entry: an existing file or directory, else a glob.
    fn copy_glob_or_path(&self, glob_or_path: &str, dest_root: &Path) -> anyhow::Result<()> {
        if glob_or_path == ".." || glob_or_path.ends_with("/..") {
            bail!(
                "A file pattern can't end in a parent directory path (..)\nIf you want to include a directory, use source-destination form, or a glob pattern ending in **/*.\nLearn more: https://spinframework.dev/writing-apps#including-files-with-components"
            );
        }
        if glob_or_path == "." || glob_or_path.ends_with("/.") {
            bail!(
                "A file pattern can't end in a current directory path (.)\nIf you want to include a directory, use source-destination form, or a glob pattern ending in **/*.\nLearn more: https://spinframework.dev/writing-apps#including-files-with-components"
            );
        }
        let path = self.app_root.join(glob_or_path);
        if path.exists() {
            let dest = dest_root.join(glob_or_path);
            if path.is_dir() {
                // Spin's `copy_glob(dir/**/*, app_root, dest)`: the path from
                // the app directory is joined under `dest`, itself already
                // ending in that path.
                self.copy_tree(&path, &self.app_root, &dest)
            } else {
                self.copy_single_file(&path, &dest, glob_or_path)
            }
        } else if looks_like_glob_pattern(glob_or_path) {
            bail!(
                "files entry {glob_or_path:?} is a glob pattern, which is not implemented by the \
                 test host (Spin 4.0.2 would copy the files it matches): name the files or \
                 directories, or use {{ source = \"...\", destination = \"/...\" }}"
            );
        } else {
            bail!("{glob_or_path:?} does not exist and doesn't appear to be a glob pattern");
        }
    }

    /// A `{ source, destination }` entry.
    fn copy_file_or_directory(
        &self,
        src: &Path,
        dest: &Path,
        guest_dest: &str,
    ) -> anyhow::Result<()> {
        let src_path = self.app_root.join(src);
        let meta = std::fs::metadata(&src_path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!("File or directory \"{}\" does not exist", src.display())
            } else {
                anyhow::Error::new(e)
                    .context(format!("invalid file mount source \"{}\"", src.display()))
            }
        })?;
        if meta.is_dir() {
            self.copy_tree(&src_path, &src_path, dest)
        } else {
            self.copy_single_file(&src_path, dest, guest_dest)
        }
    }

    /// Spin's `copy_glob` for the pattern `dir/**/*`: every file under
    /// `dir` (links followed, hidden names included) to `dest_root` joined
    /// with its path from `src_prefix`. `dest_root` is created even when
    /// there is nothing to copy.
    fn copy_tree(&self, dir: &Path, src_prefix: &Path, dest_root: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dest_root).with_context(|| {
            format!(
                "Failed to create parent directory \"{}\"",
                dest_root.display()
            )
        })?;
        self.copy_tree_files(dir, src_prefix, dest_root)
    }

    fn copy_tree_files(
        &self,
        dir: &Path,
        src_prefix: &Path,
        dest_root: &Path,
    ) -> anyhow::Result<()> {
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read directory \"{}\"", dir.display()))?;
        for entry in entries {
            let entry =
                entry.with_context(|| format!("cannot read directory \"{}\"", dir.display()))?;
            let src = entry.path();
            // As `glob`, which tests with `is_dir` / `is_file`: a broken
            // link, or one looping past the system's limit, is skipped.
            let Ok(meta) = std::fs::metadata(&src) else {
                continue;
            };
            if meta.is_dir() {
                self.copy_tree_files(&src, src_prefix, dest_root)?;
                continue;
            }
            if !meta.is_file() {
                continue;
            }
            if src.strip_prefix(&self.app_root).is_err() {
                bail!(
                    "\"{}\" cannot be mapped because it is outside the application directory. \
                     Files must be within the application directory.",
                    src.display()
                );
            }
            let relative = src.strip_prefix(src_prefix).with_context(|| {
                format!(
                    "\"{}\" is not under \"{}\"",
                    src.display(),
                    src_prefix.display()
                )
            })?;
            let dest = dest_root.join(relative);
            self.copy_single_file(&src, &dest, &relative.to_string_lossy())?;
        }
        Ok(())
    }

    /// Copies `src` to `dest`, creating its parent directories.
    fn copy_single_file(&self, src: &Path, dest: &Path, guest_dest: &str) -> anyhow::Result<()> {
        // Spin's sanity checks (lexical): the source is in the app
        // directory, the copy in the working directory.
        if src.strip_prefix(&self.app_root).is_err() {
            bail!(
                "\"{}\" cannot be mapped because it is outside the application directory \"{}\". \
                 Files must be within the application directory.",
                src.display(),
                self.app_root.display()
            );
        }
        if dest.strip_prefix(&self.assets_root).is_err() {
            bail!(
                "destination \"{guest_dest}\" of \"{}\" is outside the working directory",
                src.display()
            );
        }
        let parent = match dest.parent() {
            Some(p) if p.as_os_str().is_empty() => Path::new("."),
            Some(p) => p,
            None => bail!("No parent directory for path \"{}\"", dest.display()),
        };
        std::fs::create_dir_all(parent).with_context(|| {
            format!("Failed to create parent directory \"{}\"", parent.display())
        })?;
        if let Err(e) = std::fs::copy(src, dest) {
            let base = format!(
                "Failed to copy \"{}\" to working path \"{}\"",
                src.display(),
                dest.display()
            );
            if is_directory_like(guest_dest) || e.kind() == std::io::ErrorKind::NotFound {
                return Err(anyhow::anyhow!(
                    "\"{guest_dest}\" is not a valid destination file name"
                ))
                .context(base);
            }
            return Err(anyhow::Error::new(e))
                .with_context(|| format!("{base} (for destination path \"{guest_dest}\")"));
        }
        tracing::debug!("Copied {} to {}", src.display(), dest.display());
        Ok(())
    }
}

/// Spin's test: `glob::Pattern::escape` would change it.
fn looks_like_glob_pattern(s: &str) -> bool {
    s.contains(['*', '?', '[', ']'])
}

/// A guest path that names a directory, e.g. `/` or `..` (Spin's test).
fn is_directory_like(guest_path: &str) -> bool {
    guest_path.ends_with('/') || guest_path.ends_with('.') || guest_path.ends_with("..")
}

#[cfg(test)]
mod tests;
