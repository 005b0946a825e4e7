//! Where commands write: stdout, and the files named by `-o` (every writer goes through
//! [`OutputFile`], so none can overwrite its input, replace a device node or leave half a file).

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Stdout's reader went away (`taskscope info … | head`): the output just ends, quietly and
/// successfully, as with other Unix tools. Only stdout gets this treatment: the process ignores
/// SIGPIPE, so a watcher closing its socket is an error on that connection, not the end of the
/// Observe server.
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stdout closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Writes `text` to stdout and flushes it. A full disk (`> /dev/full`) is an error; a closed
/// pipe is [`StdoutClosed`].
pub fn print(text: &str) -> Result<()> {
    print_bytes(text.as_bytes())
}

/// [`print`] for bytes.
pub fn print_bytes(bytes: &[u8]) -> Result<()> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to stdout")),
    }
}

/// `println!` that returns [`print`]'s error instead of panicking: `outln!("{x}")?`.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::print(&format!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;

/// An output file being written. A regular file (or a new one) is written to a temporary file
/// beside it, renamed over it by [`OutputFile::commit`]: an error, or a panic, leaves the old
/// file (or none) rather than half a new one. Anything else (a FIFO, `/dev/null`, a terminal)
/// is written in place: a rename would replace the device node itself.
pub struct OutputFile {
    /// The name the user gave, for messages.
    name: PathBuf,
    /// Where the rename goes: `name` with symlinks resolved, so a link keeps pointing at the
    /// new content instead of being replaced by a file.
    target: PathBuf,
    /// The temporary file; deleted when dropped uncommitted. `None`: written in place.
    partial: Option<Partial>,
}

impl OutputFile {
    /// Prepares to write `path` (given with `flag`), refusing when it is one of `inputs`: the
    /// same file however it is named (symlinks, `..`, hard links: same device and inode).
    pub fn create(path: &Path, flag: &str, inputs: &[&Path]) -> Result<OutputFile> {
        refuse_input(path, flag, inputs)?;
        let existing = std::fs::metadata(path).ok();
        if existing.as_ref().is_some_and(|m| !m.is_file()) {
            return Ok(OutputFile {
                name: path.to_path_buf(),
                target: path.to_path_buf(),
                partial: None,
            });
        }
        let cannot_write = || format!("{}: cannot write", path.display());
        let target = match &existing {
            Some(_) => path.canonicalize().with_context(cannot_write)?,
            None => path.to_path_buf(),
        };
        let partial = Partial::create(&target).with_context(cannot_write)?;
        // Replacing a file keeps its mode: a private (0600) trace stays private.
        if let Some(existing) = existing {
            std::fs::set_permissions(&partial.0, existing.permissions())
                .with_context(cannot_write)?;
        }
        Ok(OutputFile {
            name: path.to_path_buf(),
            target,
            partial: Some(partial),
        })
    }

    /// The path to write now (the temporary file, or the special file itself).
    pub fn path(&self) -> &Path {
        self.partial.as_ref().map_or(&self.target, |p| &p.0)
    }

    /// The name the user gave.
    pub fn name(&self) -> &Path {
        &self.name
    }

    /// Whether the output is a regular file, which can be read back once committed.
    pub fn is_regular(&self) -> bool {
        self.partial.is_some()
    }

    /// Opens [`OutputFile::path`] for writing.
    pub fn open(&self) -> Result<File> {
        File::create(self.path()).with_context(|| format!("{}: cannot write", self.name.display()))
    }

    /// Writes the whole output at once, and puts it in place.
    pub fn write_all(self, bytes: &[u8]) -> Result<()> {
        self.open()?
            .write_all(bytes)
            .with_context(|| format!("{}: cannot write", self.name.display()))?;
        self.commit()
    }

    /// Puts the written file in place.
    pub fn commit(self) -> Result<()> {
        match self.partial {
            Some(partial) => partial
                .rename_to(&self.target)
                .with_context(|| format!("{}: cannot write", self.name.display())),
            None => Ok(()),
        }
    }
}

/// A temporary file beside an output, removed when dropped (an error or a panic before the
/// rename). Named here rather than by `tempfile`, whose errors name the temporary path, which
/// the user never asked for.
struct Partial(PathBuf);

impl Partial {
    fn create(target: &Path) -> io::Result<Partial> {
        let dir = match target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        // The same extension as the target, so formats told by it (`.zst`) come out the same.
        let extension = target
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        for attempt in 0u32.. {
            let path = dir.join(format!(
                ".taskscope-{}-{attempt}.partial{extension}",
                std::process::id()
            ));
            // Mode 0666 as `File::create` uses (the umask applies).
            match File::options()
                .write(true)
                .create_new(true)
                .mode(0o666)
                .open(&path)
            {
                Ok(_) => return Ok(Partial(path)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 1000 => {}
                Err(e) => return Err(e),
            }
        }
        unreachable!("the loop returns by attempt 1000")
    }

    fn rename_to(mut self, target: &Path) -> io::Result<()> {
        std::fs::rename(&self.0, target)?;
        // Nothing left to remove.
        self.0 = PathBuf::new();
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

fn refuse_input(output: &Path, flag: &str, inputs: &[&Path]) -> Result<()> {
    let Ok(out) = std::fs::metadata(output) else {
        return Ok(());
    };
    for input in inputs {
        if let Ok(input) = std::fs::metadata(input)
            && (input.dev(), input.ino()) == (out.dev(), out.ino())
        {
            bail!(
                "{}: output is the input file; choose another {flag} path",
                output.display()
            );
        }
    }
    Ok(())
}
