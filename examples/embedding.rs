//! Using the peftlab script host as a library: run study code in-process, register an extra
//! binding, and read the printed output.
//!
//! ```text
//! cargo run --example embedding
//! ```

use peftlab::host::{bind, fail, RhaiResult};

fn main() {
    let mut host = peftlab::api::host()
        .set("r", "8")
        .expect("valid setting")
        .out_dir(std::env::temp_dir().join("peftlab-embedding"))
        .capture_output()
        .build();

    // An application-specific binding, documented like every other one.
    bind(
        host.engine_mut(),
        "scaled_rank",
        ["r", "factor"],
        "`r * factor`, for r > 0.",
        |r: i64, f: i64| -> RhaiResult<i64> {
            if r <= 0 {
                return Err(fail(format!("scaled_rank: rank must be > 0 (got {r})")));
            }
            Ok(r * f)
        },
    );

    let script = r#"
        import "std/study" as study;
        let cells = study::grid(#{ r: [r, 2 * r], alpha: [16] });
        for c in cells { print(`${study::label(c)} -> ${scaled_rank(c.r, 2)}`); }
    "#;
    match host.eval(script) {
        Ok(_) => print!("{}", host.output()),
        Err(e) => eprint!("{e}"),
    }

    // Errors carry the position and the function name.
    if let Err(e) = host.eval("let x = scaled_rank(0, 2);") {
        eprint!("{e}");
    }
}
