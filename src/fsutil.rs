//! Small filesystem helpers shared by the domain modules.
//!
//! Every file peftlab writes goes through [`write_atomic`] or [`write_atomic_with`]: the content
//! is written to a temporary file in the target's directory, flushed to disk and renamed over
//! the target. A failed write (disk full, file size limit, Ctrl-C inside the writer) removes the
//! temporary file and leaves the previous file untouched.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The temporary name used while `path` is being written: `.<name>.tmp-<pid>` in the same
/// directory (so that the final rename stays within one filesystem).
fn temp_path(dir: &Path, path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, flushed and
/// renamed over the target, so readers never see a half-written file. Creates parent
/// directories.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Streaming form of [`write_atomic`]: `fill` writes the content into a buffered writer on a
/// temporary file in the target's directory; only when it succeeds and the data reached the
/// disk is the file renamed over `path`. On any error the temporary file is removed and the
/// previous content of `path` (if any) is unchanged. Creates parent directories.
pub fn write_atomic_with<F>(path: &Path, fill: F) -> std::io::Result<()>
where
    F: FnOnce(&mut dyn Write) -> std::io::Result<()>,
{
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    if path.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            format!("{} is a directory", path.display()),
        ));
    }
    let tmp = temp_path(dir, path);
    let write = || -> std::io::Result<()> {
        let f = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::new(f);
        fill(&mut w)?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect()
    }

    #[test]
    fn replaces_the_file_and_creates_parents() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/out.txt");
        write_atomic(&p, b"old").unwrap();
        write_atomic(&p, b"new content").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new content");
        write_atomic_with(&p, |w| {
            for i in 0..3 {
                writeln!(w, "line {i}")?;
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "line 0\nline 1\nline 2\n"
        );
        assert!(leftovers(p.parent().unwrap()).is_empty());
    }

    #[test]
    fn a_failing_writer_keeps_the_old_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("result.csv");
        std::fs::write(&p, "a,b\n1,2\n").unwrap();
        // The writer fails after having written part of the new content (as a full disk does).
        let e = write_atomic_with(&p, |w| {
            w.write_all(&[b'x'; 100_000])?;
            Err(std::io::Error::other("No space left on device"))
        })
        .unwrap_err();
        assert!(e.to_string().contains("No space left"), "{e}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a,b\n1,2\n");
        assert!(
            leftovers(dir.path()).is_empty(),
            "{:?}",
            leftovers(dir.path())
        );
    }

    #[test]
    fn a_directory_target_is_an_error_that_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("sub");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("keep"), "x").unwrap();
        let e = write_atomic(&d, b"data").unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        assert_eq!(std::fs::read_to_string(d.join("keep")).unwrap(), "x");
        assert!(leftovers(dir.path()).is_empty());
    }
}
