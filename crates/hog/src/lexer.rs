//! Source text to tokens, each with its line and column (1-based) for error messages.

use crate::error::SyntaxError;

/// A token's kind and text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    Int(i64),
    Float(f64),
    Str(String),
    /// An f-string: literal parts and the source of each `{expression}` with its position.
    FStr(Vec<FPart>),
    Keyword(&'static str),
    Op(&'static str),
    End,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FPart {
    Text(String),
    Code { source: String, line: u32, column: u32 },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub line: u32,
    pub column: u32,
}

const KEYWORDS: [&str; 20] = [
    "let", "fun", "if", "else", "for", "in", "while", "return", "break", "continue", "true", "false", "null", "and",
    "or", "not", "like", "ilike", "throw", "try",
];

/// Longest first, so `:=` is not read as `:` then `=`.
const OPERATORS: [&str; 33] = [
    "=~*", "!~*", "?.[", ":=", "==", "!=", "<=", ">=", "=~", "!~", "??", "?.", "||", "&&", "->", "=>", "+", "-", "*",
    "/", "%", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ":", ".",
];
const SINGLE: [&str; 3] = [";", "?", "!"];

/// The most tokens a source may hold (a budget on what a save may ask the parser to do).
pub(crate) const MAX_TOKENS: usize = 100_000;

pub(crate) fn lex(source: &str) -> Result<Vec<Token>, SyntaxError> {
    Lexer { chars: source.chars().collect(), at: 0, line: 1, column: 1 }.run()
}

/// Lexes the code of an f-string part, positions counted from where it stands in the file.
pub(crate) fn lex_at(source: &str, line: u32, column: u32) -> Result<Vec<Token>, SyntaxError> {
    Lexer { chars: source.chars().collect(), at: 0, line, column }.run()
}

struct Lexer {
    chars: Vec<char>,
    at: usize,
    line: u32,
    column: u32,
}

impl Lexer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.at).copied()?;
        self.at += 1;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn error(&self, line: u32, column: u32, message: impl Into<String>) -> SyntaxError {
        SyntaxError { line, column, message: message.into() }
    }

    fn run(mut self) -> Result<Vec<Token>, SyntaxError> {
        let mut tokens = Vec::new();
        loop {
            self.skip_space_and_comments()?;
            let (line, column) = (self.line, self.column);
            let Some(c) = self.peek(0) else {
                tokens.push(Token { tok: Tok::End, line, column });
                return Ok(tokens);
            };
            if tokens.len() >= MAX_TOKENS {
                return Err(self.error(line, column, format!("the code is longer than {MAX_TOKENS} tokens")));
            }
            let tok = if c == 'f' && matches!(self.peek(1), Some('\'' | '"')) {
                self.bump();
                self.fstring()?
            } else if c.is_ascii_alphabetic() || c == '_' || c == '$' {
                self.word()
            } else if c.is_ascii_digit() {
                self.number()?
            } else if c == '\'' || c == '"' {
                Tok::Str(self.string()?)
            } else if c == '`' {
                Tok::Ident(self.string()?)
            } else {
                self.operator(line, column)?
            };
            tokens.push(Token { tok, line, column });
        }
    }

    fn skip_space_and_comments(&mut self) -> Result<(), SyntaxError> {
        loop {
            match (self.peek(0), self.peek(1)) {
                (Some(c), _) if c.is_whitespace() => {
                    self.bump();
                }
                (Some('/'), Some('/')) | (Some('-'), Some('-')) => {
                    while self.peek(0).is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                (Some('/'), Some('*')) => {
                    let (line, column) = (self.line, self.column);
                    self.bump();
                    self.bump();
                    loop {
                        match (self.peek(0), self.peek(1)) {
                            (Some('*'), Some('/')) => {
                                self.bump();
                                self.bump();
                                break;
                            }
                            (Some(_), _) => {
                                self.bump();
                            }
                            (None, _) => return Err(self.error(line, column, "unterminated comment")),
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn word(&mut self) -> Tok {
        let mut word = String::new();
        while let Some(c) = self.peek(0).filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '$') {
            word.push(c);
            self.bump();
        }
        // The SQL-like words are keywords in any case; the statement words only as written.
        let lower = word.to_ascii_lowercase();
        let any_case = ["true", "false", "null", "and", "or", "not", "like", "ilike", "in"];
        match KEYWORDS.iter().find(|k| **k == lower) {
            Some(keyword) if word == *keyword || any_case.contains(keyword) => Tok::Keyword(keyword),
            _ => Tok::Ident(word),
        }
    }

    fn number(&mut self) -> Result<Tok, SyntaxError> {
        let (line, column) = (self.line, self.column);
        let mut text = String::new();
        let mut float = false;
        while let Some(c) = self.peek(0) {
            if c.is_ascii_digit() {
                text.push(c);
            } else if c == '.' && !float && self.peek(1).is_some_and(|d| d.is_ascii_digit()) {
                float = true;
                text.push(c);
            } else if (c == 'e' || c == 'E') && self.peek(1).is_some_and(|d| d.is_ascii_digit() || d == '-' || d == '+')
            {
                float = true;
                text.push(c);
                self.bump();
                text.push(self.bump().unwrap_or('0'));
                continue;
            } else {
                break;
            }
            self.bump();
        }
        if float {
            text.parse::<f64>().map(Tok::Float).map_err(|_| self.error(line, column, format!("bad number {text}")))
        } else {
            match text.parse::<i64>() {
                Ok(n) => Ok(Tok::Int(n)),
                Err(_) => text.parse::<f64>().map(Tok::Float).map_err(|_| self.error(line, column, "bad number")),
            }
        }
    }

    fn escape(&mut self, line: u32, column: u32) -> Result<char, SyntaxError> {
        match self.bump() {
            Some('n') => Ok('\n'),
            Some('t') => Ok('\t'),
            Some('r') => Ok('\r'),
            Some('0') => Ok('\0'),
            Some('b') => Ok('\u{8}'),
            Some('f') => Ok('\u{c}'),
            Some('v') => Ok('\u{b}'),
            Some(c @ ('\\' | '\'' | '"' | '`' | '{' | '}')) => Ok(c),
            Some(other) => Ok(other),
            None => Err(self.error(line, column, "unterminated string")),
        }
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        let (line, column) = (self.line, self.column);
        let quote = self.bump().unwrap_or('\'');
        let mut text = String::new();
        loop {
            match self.bump() {
                None => return Err(self.error(line, column, "unterminated string")),
                Some('\\') => text.push(self.escape(line, column)?),
                Some(c) if c == quote => return Ok(text),
                Some(c) => text.push(c),
            }
        }
    }

    fn fstring(&mut self) -> Result<Tok, SyntaxError> {
        let (line, column) = (self.line, self.column);
        let quote = self.bump().unwrap_or('\'');
        let mut parts = Vec::new();
        let mut text = String::new();
        loop {
            match self.bump() {
                None => return Err(self.error(line, column, "unterminated string")),
                Some('\\') => text.push(self.escape(line, column)?),
                Some(c) if c == quote => break,
                Some('{') => {
                    if !text.is_empty() {
                        parts.push(FPart::Text(std::mem::take(&mut text)));
                    }
                    let (code_line, code_column) = (self.line, self.column);
                    let mut depth = 1;
                    let mut source = String::new();
                    loop {
                        match self.bump() {
                            None => return Err(self.error(line, column, "unterminated {…} in an f-string")),
                            Some('{') => {
                                depth += 1;
                                source.push('{');
                            }
                            Some('}') => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                                source.push('}');
                            }
                            Some(c) => source.push(c),
                        }
                    }
                    parts.push(FPart::Code { source, line: code_line, column: code_column });
                }
                Some(c) => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(FPart::Text(text));
        }
        Ok(Tok::FStr(parts))
    }

    fn operator(&mut self, line: u32, column: u32) -> Result<Tok, SyntaxError> {
        for op in OPERATORS.iter().chain(SINGLE.iter()) {
            let matches = op.chars().enumerate().all(|(n, c)| self.peek(n) == Some(c));
            if matches {
                for _ in 0..op.chars().count() {
                    self.bump();
                }
                return Ok(Tok::Op(op));
            }
        }
        let c = self.peek(0).unwrap_or(' ');
        Err(self.error(line, column, format!("unexpected character `{c}`")))
    }
}
