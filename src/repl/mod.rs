//! `peftlab repl`: an interactive session on a [`Host`].
//!
//! Follows `src/bin/rhai-repl.rs` of rhai 1.27 (persistent `Scope`; each input is compiled with
//! the scope and merged into the accumulated function AST, so variables and functions persist),
//! with these differences: input continues on the next line while it is incomplete (see
//! [`helper::is_incomplete`]); Ctrl-C at the prompt clears the line and Ctrl-D quits (shell
//! convention); Ctrl-C during evaluation interrupts the evaluation (script loops through
//! `on_progress`, native calls through `interrupt::check`) and keeps the session.
//!
//! When stdin is not a terminal the REPL reads lines from it with the same semantics (no
//! prompt, no line editing, no history), so it can be driven through a pipe.

pub mod commands;
pub mod helper;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use rhai::Engine;
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Config, Editor};

use crate::host::Host;

/// Where the REPL keeps its history: `$PEFTLAB_HISTORY` (empty: no history file), else
/// `<data dir>/peftlab/repl_history.txt` (`dirs::data_dir`).
pub fn history_path() -> Option<PathBuf> {
    match std::env::var_os("PEFTLAB_HISTORY") {
        Some(p) if p.is_empty() => None,
        Some(p) => Some(PathBuf::from(p)),
        None => dirs::data_dir().map(|d| d.join("peftlab").join("repl_history.txt")),
    }
}

/// What the loop should do after an input.
enum Flow {
    Continue,
    Quit,
}

/// Runs the REPL until `:quit` or end of input. Returns the process exit code (0).
pub fn run(mut host: Host, banner: bool) -> u8 {
    crate::interrupt::install();
    if std::io::stdin().is_terminal() {
        interactive(&mut host, banner)
    } else {
        piped(&mut host)
    }
}

fn handle(host: &mut Host, input: &str) -> Flow {
    let text = input.trim();
    if text.is_empty() {
        return Flow::Continue;
    }
    if text.starts_with(':') {
        return match commands::run_command(host, text) {
            commands::Outcome::Quit => Flow::Quit,
            commands::Outcome::Done => Flow::Continue,
        };
    }
    match host.eval(input) {
        Ok(v) if v.is_unit() => {}
        Ok(v) => {
            let summary = host.summarize(&v);
            host.session().reporter().print(&format!("=> {summary}"));
        }
        Err(e) => host.session().reporter().error(&e.rendered),
    }
    crate::interrupt::reset();
    Flow::Continue
}

fn completion_names(host: &Host) -> Vec<String> {
    let mut names: Vec<String> = host
        .docs()
        .into_iter()
        .filter(|d| !d.name.contains('$'))
        .map(|d| d.name)
        .collect();
    names.extend(host.scope().iter_raw().map(|(n, _, _)| n.to_string()));
    names.extend(commands::COMMANDS.iter().map(|(c, _)| c.to_string()));
    names.sort();
    names.dedup();
    names
}

fn interactive(host: &mut Host, banner: bool) -> u8 {
    let config = Config::builder().auto_add_history(true).build();
    let mut editor: Editor<helper::ReplHelper, DefaultHistory> = match Editor::with_config(config) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot start line editor: {e}");
            return piped(host);
        }
    };
    editor.set_helper(Some(helper::ReplHelper::new(completion_names(host))));
    let history = history_path();
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    if banner {
        println!(
            "peftlab {} REPL. :help for commands, :help NAME for a function, Ctrl-D to quit.",
            env!("CARGO_PKG_VERSION")
        );
    }
    loop {
        match editor.readline("peftlab> ") {
            Ok(line) => {
                if let Flow::Quit = handle(host, &line) {
                    break;
                }
                if let Some(h) = editor.helper_mut() {
                    h.names = completion_names(host);
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(ReadlineError::Signal(_)) => continue,
            Err(e) => {
                eprintln!("error: {e}");
                break;
            }
        }
    }
    if let Some(h) = &history {
        if let Some(dir) = h.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.save_history(h);
    }
    0
}

fn piped(host: &mut Host) -> u8 {
    let parser = Engine::new_raw();
    let stdin = std::io::stdin();
    let mut pending = String::new();
    let mut lines = stdin.lock().lines();
    loop {
        let line = match lines.next() {
            Some(Ok(l)) => l,
            // A signal during a blocking read: try again.
            Some(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Some(Err(_)) | None => break,
        };
        pending.push_str(&line);
        pending.push('\n');
        if helper::is_incomplete(&parser, &pending) {
            continue;
        }
        let input = std::mem::take(&mut pending);
        let flow = handle(host, &input);
        let _ = std::io::stdout().flush();
        if let Flow::Quit = flow {
            return 0;
        }
    }
    if !pending.trim().is_empty() {
        // End of input inside an unfinished piece of code: show its error.
        handle(host, &pending);
    }
    0
}
