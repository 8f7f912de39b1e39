//! Start-up loading: the redis-server command line, config files with `include`, and the
//! final checks (refused values, warnings).
//!
//! As in Redis 7.0, command-line options are turned into config lines (`--port 7000` becomes
//! `port "7000"`) and applied after the file, so later lines override earlier ones.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use verdis_core::resp::split_args;

use super::directives::{self, DEPRECATED, DIRECTIVES, MULTI_ARG};
use super::parse::{self, Parsed};
use super::{io_error_text, Config, ConfigError, Loaded, Origin, Problem, StoreMode};

/// How deep `include` may nest: deep enough for any real layout, shallow enough to stop an
/// include loop with a clear error instead of exhausting the stack.
pub const INCLUDE_DEPTH_MAX: u32 = 16;

/// Parses a redis-server style command line, `[path/to/redis.conf] [--directive value ...]`
/// (without argv\[0\]), loads the file and the options, and validates the result.
pub fn load(args: &[String]) -> Result<Loaded, ConfigError> {
    let (file, options) = split_command_line(args)?;
    let mut loader = Loader {
        config: Config::default(),
        save_loaded: false,
        last_set: HashMap::new(),
    };
    let config_file = match file {
        Some(path) => {
            loader.load_file(&path, 0)?;
            Some(std::path::absolute(&path).unwrap_or(path))
        }
        None => None,
    };
    for (i, line) in options.iter().enumerate() {
        let lineno = u32::try_from(i + 1).unwrap_or(u32::MAX);
        loader.line(&Origin::CommandLine, lineno, line.as_bytes(), 0)?;
    }
    loader.check_refusals()?;
    let warnings = loader.config.warnings();
    Ok(Loaded {
        config: loader.config,
        config_file,
        warnings,
    })
}

/// Splits the arguments into the config file and the option lines, following redis-server
/// 7.0's `main()`: a first argument not starting with `-` is the file; `--name` starts a new
/// line; other arguments are quoted and appended to the current line; a bare `--save` (last,
/// or followed by another option) means `--save ""`.
fn split_command_line(args: &[String]) -> Result<(Option<PathBuf>, Vec<String>), ConfigError> {
    let mut j = 0;
    let mut file = None;
    if let Some(first) = args.first() {
        if !first.starts_with('-') {
            file = Some(PathBuf::from(first));
            j = 1;
        }
    }
    let mut options = String::new();
    let mut handled_last_arg = true;
    while j < args.len() {
        let a = &args[j];
        let last = j + 1 == args.len();
        if a == "-" && (j == 0 || last) {
            return Err(ConfigError::StdinUnsupported);
        } else if handled_last_arg && a.starts_with("--") {
            if !options.is_empty() {
                options.push('\n');
            }
            options.push_str(&a[2..]);
            options.push(' ');
            let words = split_args(a.as_bytes()).map_or(0, |w| w.len());
            if words == 1 {
                handled_last_arg = false;
                let next_is_option = !last && args[j + 1].starts_with("--");
                if a.eq_ignore_ascii_case("--save") && (next_is_option || last) {
                    options.push_str("\"\"");
                    handled_last_arg = true;
                }
            } else {
                handled_last_arg = true;
            }
        } else {
            options.push_str(&parse::repr(a.as_bytes()));
            options.push(' ');
            handled_last_arg = true;
        }
        j += 1;
    }
    let lines = if options.is_empty() {
        Vec::new()
    } else {
        options.split('\n').map(str::to_string).collect()
    };
    Ok((file, lines))
}

struct Loader {
    config: Config,
    /// Whether a `save` line was seen: the first one replaces the default, later ones append.
    save_loaded: bool,
    /// For each directive, the line that set it last (to name it if its value is refused).
    last_set: HashMap<&'static str, (Origin, u32, String)>,
}

impl Loader {
    fn load_file(&mut self, path: &Path, depth: u32) -> Result<(), ConfigError> {
        let bytes = std::fs::read(path).map_err(|e| ConfigError::Open {
            path: path.to_path_buf(),
            reason: io_error_text(&e),
        })?;
        let origin = Origin::File(path.to_path_buf());
        for (i, raw) in bytes.split(|c| *c == b'\n').enumerate() {
            let lineno = u32::try_from(i + 1).unwrap_or(u32::MAX);
            self.line(&origin, lineno, raw, depth)?;
        }
        Ok(())
    }

    fn line(
        &mut self,
        origin: &Origin,
        lineno: u32,
        raw: &[u8],
        depth: u32,
    ) -> Result<(), ConfigError> {
        let line = trim(raw);
        if line.is_empty() || line[0] == b'#' {
            return Ok(());
        }
        let text = String::from_utf8_lossy(line).into_owned();
        let err = |problem| ConfigError::Line {
            origin: origin.clone(),
            line: lineno,
            text: text.clone(),
            problem,
        };
        let argv = split_args(line).ok_or_else(|| err(Problem::UnbalancedQuotes))?;
        let Some((name, rest)) = argv.split_first() else {
            return Ok(());
        };
        let args: Vec<&[u8]> = rest.iter().map(Vec::as_slice).collect();
        if let Some((spec, _)) = directives::lookup(name) {
            if !spec.has(MULTI_ARG) && args.len() != 1 {
                return Err(err(Problem::Invalid(
                    "wrong number of arguments".to_string(),
                )));
            }
            // Redis 7.0.1+: a single non-empty argument of a multi-argument directive is split
            // again, so `--save "60 1"` works.
            let resplit = match args.as_slice() {
                [one] if spec.has(MULTI_ARG) && !one.is_empty() => split_args(one),
                _ => None,
            };
            let resplit_refs: Vec<&[u8]>;
            let args = match &resplit {
                Some(words) => {
                    resplit_refs = words.iter().map(Vec::as_slice).collect();
                    &resplit_refs
                }
                None => &args,
            };
            let parsed =
                parse::parse_value(spec.kind, args).map_err(|e| err(Problem::Invalid(e)))?;
            let mut mode = StoreMode::Replace;
            if let Parsed::Save(points) = &parsed {
                // Redis 7.0: the first save line replaces the default, later ones append,
                // and `save ""` resets.
                if self.save_loaded && !points.is_empty() {
                    mode = StoreMode::AppendSave;
                }
                self.save_loaded = true;
            }
            self.config.store(spec, parsed, mode);
            self.last_set
                .insert(spec.name, (origin.clone(), lineno, text.clone()));
            return Ok(());
        }
        if DEPRECATED
            .iter()
            .any(|(n, argc)| n.as_bytes().eq_ignore_ascii_case(name) && *argc == argv.len())
        {
            return Ok(());
        }
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        let refused = |why: &str| Err(err(Problem::Refused(why.to_string())));
        match (name.as_str(), argv.len()) {
            ("include", 2) => {
                if depth + 1 > INCLUDE_DEPTH_MAX {
                    return Err(err(Problem::IncludeTooDeep));
                }
                self.include(&argv[1], depth + 1)
            }
            ("rename-command", 3) => refused(
                "rename-command is not implemented; refusing rather than leave the command \
                 reachable under its usual name",
            ),
            ("user", n) if n >= 2 => refused(
                "ACL users are not implemented yet; refusing rather than accept clients without \
                 the configured access rules",
            ),
            ("loadmodule", n) if n >= 2 => refused("modules are not supported"),
            ("sentinel", 1) => refused("Sentinel mode is not supported"),
            ("sentinel", _) => Err(err(Problem::Invalid(
                "sentinel directive while not in sentinel mode".to_string(),
            ))),
            (n, _) if n.contains('.') => {
                refused("module configurations are not supported (no modules)")
            }
            _ => Err(err(Problem::BadDirective)),
        }
    }

    /// `include path`: relative to the working directory like Redis; a wildcard (`*`, `?`,
    /// `[`) in the last path component includes every matching file in name order, and no
    /// match is not an error.
    fn include(&mut self, arg: &[u8], depth: u32) -> Result<(), ConfigError> {
        let path = PathBuf::from(String::from_utf8_lossy(arg).into_owned());
        if !arg.iter().any(|c| matches!(c, b'*' | b'?' | b'[')) {
            return self.load_file(&path, depth);
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let pattern = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut matches: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .filter(|e| {
                    let name = e.file_name();
                    crate::glob::glob_match(
                        pattern.as_bytes(),
                        name.to_string_lossy().as_bytes(),
                        false,
                    )
                })
                .map(|e| dir.join(e.file_name()))
                .collect(),
            Err(_) => Vec::new(),
        };
        matches.sort();
        for m in matches {
            self.load_file(&m, depth)?;
        }
        Ok(())
    }

    /// Refuses final values that Verdis cannot honour, naming the line that set them.
    fn check_refusals(&self) -> Result<(), ConfigError> {
        for spec in DIRECTIVES {
            if let Some(why) = self.config.refusal(spec) {
                let (origin, line, text) = self.last_set.get(spec.name).cloned().unwrap_or((
                    Origin::CommandLine,
                    0,
                    spec.name.to_string(),
                ));
                return Err(ConfigError::Line {
                    origin,
                    line,
                    text,
                    problem: Problem::Refused(why.to_string()),
                });
            }
        }
        Ok(())
    }
}

/// Trims the bytes Redis trims from config lines (`sdstrim(line, " \t\r\n")`).
pub(crate) fn trim(mut s: &[u8]) -> &[u8] {
    let ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    while s.first().is_some_and(ws) {
        s = &s[1..];
    }
    while s.last().is_some_and(ws) {
        s = &s[..s.len() - 1];
    }
    s
}

#[cfg(test)]
mod tests {
    use super::split_command_line;

    fn split(args: &[&str]) -> (Option<String>, Vec<String>) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (f, l) = split_command_line(&args).expect("splits");
        (f.map(|p| p.to_string_lossy().into_owned()), l)
    }

    #[test]
    fn command_line_becomes_config_lines_like_redis_main() {
        let (f, l) = split(&["a.conf", "--port", "7000", "--bind", "127.0.0.1", "::1"]);
        assert_eq!(f.as_deref(), Some("a.conf"));
        assert_eq!(l, vec!["port \"7000\" ", "bind \"127.0.0.1\" \"::1\" "]);
    }

    #[test]
    fn bare_save_means_empty_save() {
        let (_, l) = split(&["--save", "--port", "1"]);
        assert_eq!(l, vec!["save \"\"", "port \"1\" "]);
        let (_, l) = split(&["--port", "1", "--save"]);
        assert_eq!(l, vec!["port \"1\" ", "save \"\""]);
        let (_, l) = split(&["--save", ""]);
        assert_eq!(l, vec!["save \"\" "]);
    }

    #[test]
    fn name_and_value_in_one_argument() {
        let (f, l) = split(&["--port 7000", "--save", "60 1"]);
        assert_eq!(f, None);
        assert_eq!(l, vec!["port 7000 ", "save \"60 1\" "]);
    }

    #[test]
    fn stdin_dash_is_refused() {
        let args = vec!["-".to_string()];
        assert!(split_command_line(&args).is_err());
    }
}
