//! REPL commands: `:help [NAME]`, `:vars`, `:fns`, `:load FILE`, `:reset`, `:quit`.

use std::path::Path;

use crate::host::docs;
use crate::host::Host;

/// The commands and their one-line descriptions.
pub const COMMANDS: &[(&str, &str)] = &[
    (
        ":help",
        ":help [NAME]   this list, or the documentation of a function or std module",
    ),
    (
        ":vars",
        ":vars          variables of the session with their values",
    ),
    (":fns", ":fns           functions defined in the session"),
    (
        ":load",
        ":load FILE     run a script file in the session (its functions stay defined)",
    ),
    (
        ":reset",
        ":reset         forget all variables and functions",
    ),
    (":quit", ":quit          leave (also Ctrl-D)"),
];

/// What the loop does after a command.
pub enum Outcome {
    /// Keep reading.
    Done,
    /// Leave the REPL.
    Quit,
}

/// Runs one `:command` line.
pub fn run_command(host: &mut Host, line: &str) -> Outcome {
    let (cmd, arg) = match line.split_once(char::is_whitespace) {
        Some((c, a)) => (c, a.trim()),
        None => (line, ""),
    };
    let rep = host.session().reporter().clone();
    match cmd {
        ":quit" | ":q" | ":exit" => return Outcome::Quit,
        ":help" | ":h" | ":?" if arg.is_empty() => {
            let mut text = String::from("commands:\n");
            for (_, d) in COMMANDS {
                text.push_str(&format!("  {d}\n"));
            }
            text.push_str(
                "Input continues on the next line while it is incomplete. Ctrl-C clears the line \
                 or interrupts a running evaluation. `peftlab doc` lists every function.",
            );
            rep.print(&text);
        }
        ":help" | ":h" | ":?" => {
            let all = host.docs();
            match docs::render_topic(host.engine(), &all, arg) {
                Some(t) => rep.print(t.trim_end()),
                None => rep.error(&format!("no function or std module named '{arg}' (`:help` lists commands; `peftlab doc` lists functions)")),
            }
        }
        ":vars" => {
            let mut seen: Vec<&str> = Vec::new();
            let mut lines = Vec::new();
            for (name, constant, value) in host.scope().iter_raw() {
                if seen.contains(&name) {
                    continue;
                }
                seen.push(name);
                let kind = if constant { "const " } else { "" };
                let tname = crate::host::convert::type_name(host.engine(), value);
                lines.push(format!("{kind}{name}: {tname} = {}", host.summarize(value)));
            }
            lines.reverse();
            rep.print(
                if lines.is_empty() {
                    "(no variables)".to_string()
                } else {
                    lines.join("\n")
                }
                .as_str(),
            );
        }
        ":fns" => {
            let f = host.user_functions();
            rep.print(
                if f.is_empty() {
                    "(no functions)".to_string()
                } else {
                    f.join("\n")
                }
                .as_str(),
            );
        }
        ":load" if arg.is_empty() => rep.error("usage: :load FILE"),
        ":load" => match host.run_file(Path::new(arg)) {
            Ok(v) if v.is_unit() => rep.print(&format!("loaded {arg}")),
            Ok(v) => rep.print(&format!("=> {}", host.summarize(&v))),
            Err(e) => rep.error(&e.rendered),
        },
        ":reset" => {
            host.reset();
            rep.print("session reset");
        }
        other => rep.error(&format!("unknown command '{other}' (try :help)")),
    }
    Outcome::Done
}
