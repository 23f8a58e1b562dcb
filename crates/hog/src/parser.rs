//! Tokens to a syntax tree: recursive descent, with a bound on nesting so no input can
//! exhaust the stack.

use std::rc::Rc;

use crate::ast::{BinOp, Expr, FSegment, Function, Pos, Stmt};
use crate::error::SyntaxError;
use crate::lexer::{FPart, Tok, Token, lex_at};

/// How deeply expressions and blocks may nest.
pub(crate) const MAX_NESTING: usize = 100;

pub(crate) fn parse_program(tokens: Vec<Token>) -> Result<Vec<Stmt>, SyntaxError> {
    let mut parser = Parser { tokens, at: 0, depth: 0 };
    let mut statements = Vec::new();
    while parser.peek() != &Tok::End {
        statements.push(parser.statement()?);
    }
    Ok(statements)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn token(&self) -> &Token {
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }

    fn peek(&self) -> &Tok {
        &self.token().tok
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        &self.tokens[(self.at + ahead).min(self.tokens.len() - 1)].tok
    }

    fn pos(&self) -> Pos {
        Pos { line: self.token().line, column: self.token().column }
    }

    fn advance(&mut self) -> Tok {
        let tok = self.peek().clone();
        if self.at < self.tokens.len() - 1 {
            self.at += 1;
        }
        tok
    }

    fn error(&self, message: impl Into<String>) -> SyntaxError {
        let token = self.token();
        SyntaxError { line: token.line, column: token.column, message: message.into() }
    }

    fn unexpected(&self, wanted: &str) -> SyntaxError {
        let found = match self.peek() {
            Tok::End => "the end of the code".to_owned(),
            Tok::Ident(name) => format!("`{name}`"),
            Tok::Keyword(word) | Tok::Op(word) => format!("`{word}`"),
            Tok::Int(n) => format!("`{n}`"),
            Tok::Float(n) => format!("`{n}`"),
            Tok::Str(_) | Tok::FStr(_) => "a string".to_owned(),
        };
        self.error(format!("expected {wanted}, found {found}"))
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Tok::Op(o) if *o == op)
    }

    fn is_keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Tok::Keyword(k) if *k == word)
    }

    fn eat_op(&mut self, op: &str) -> bool {
        let found = self.is_op(op);
        if found {
            self.advance();
        }
        found
    }

    fn eat_keyword(&mut self, word: &str) -> bool {
        let found = self.is_keyword(word);
        if found {
            self.advance();
        }
        found
    }

    fn expect_op(&mut self, op: &str) -> Result<(), SyntaxError> {
        if self.eat_op(op) { Ok(()) } else { Err(self.unexpected(&format!("`{op}`"))) }
    }

    fn ident(&mut self) -> Result<Rc<str>, SyntaxError> {
        match self.peek().clone() {
            Tok::Ident(name) => {
                self.advance();
                Ok(name.into())
            }
            _ => Err(self.unexpected("a name")),
        }
    }

    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, SyntaxError>) -> Result<T, SyntaxError> {
        if self.depth >= MAX_NESTING {
            return Err(self.error(format!("the code nests deeper than {MAX_NESTING} levels")));
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }

    fn end_of_statement(&mut self) {
        while self.eat_op(";") {}
    }

    fn statement(&mut self) -> Result<Stmt, SyntaxError> {
        self.nested(Self::statement_inner)
    }

    fn statement_inner(&mut self) -> Result<Stmt, SyntaxError> {
        let pos = self.pos();
        let statement = match self.peek().clone() {
            Tok::Keyword("let") => {
                self.advance();
                let name = self.ident()?;
                let value = if self.eat_op(":=") { Some(self.expression()?) } else { None };
                Stmt::Let(name, value)
            }
            Tok::Keyword("if") => {
                self.advance();
                self.expect_op("(")?;
                let cond = self.expression()?;
                self.expect_op(")")?;
                let then = Box::new(self.statement()?);
                let otherwise = if self.eat_keyword("else") { Some(Box::new(self.statement()?)) } else { None };
                return Ok(Stmt::If(cond, then, otherwise));
            }
            Tok::Keyword("while") => {
                self.advance();
                self.expect_op("(")?;
                let cond = self.expression()?;
                self.expect_op(")")?;
                return Ok(Stmt::While(cond, Box::new(self.statement()?)));
            }
            Tok::Keyword("for") => return self.for_statement(),
            Tok::Keyword("fun") => {
                self.advance();
                let name = self.ident()?;
                let params = self.params()?;
                let body = self.block()?;
                return Ok(Stmt::Function(Rc::new(Function { name, params, body })));
            }
            Tok::Keyword("return") => {
                self.advance();
                let ends = self.is_op(";") || self.is_op("}") || self.peek() == &Tok::End;
                let value = if ends { None } else { Some(self.expression()?) };
                Stmt::Return(value)
            }
            Tok::Keyword("break") => {
                self.advance();
                Stmt::Break
            }
            Tok::Keyword("continue") => {
                self.advance();
                Stmt::Continue
            }
            Tok::Keyword("throw") => {
                self.advance();
                Stmt::Throw(self.expression()?, pos)
            }
            Tok::Keyword(word @ ("try" | "else" | "in")) => {
                return Err(self.error(format!("`{word}` is not supported here")));
            }
            Tok::Op("{") => return Ok(Stmt::Block(self.block()?)),
            _ => {
                let expr = self.expression()?;
                if self.eat_op(":=") {
                    if !matches!(expr, Expr::Var(..) | Expr::Index { nullish: false, .. }) {
                        return Err(SyntaxError {
                            line: pos.line,
                            column: pos.column,
                            message: "only a variable, an element or a field can be assigned to".into(),
                        });
                    }
                    Stmt::Assign { target: expr, value: self.expression()?, pos }
                } else {
                    Stmt::Expr(expr)
                }
            }
        };
        self.end_of_statement();
        Ok(statement)
    }

    fn block(&mut self) -> Result<Vec<Stmt>, SyntaxError> {
        self.expect_op("{")?;
        let mut statements = Vec::new();
        while !self.is_op("}") {
            if self.peek() == &Tok::End {
                return Err(self.unexpected("`}`"));
            }
            statements.push(self.statement()?);
        }
        self.advance();
        Ok(statements)
    }

    fn params(&mut self) -> Result<Vec<Rc<str>>, SyntaxError> {
        self.expect_op("(")?;
        let mut params = Vec::new();
        while !self.eat_op(")") {
            params.push(self.ident()?);
            if !self.is_op(")") {
                self.expect_op(",")?;
            }
        }
        Ok(params)
    }

    fn for_statement(&mut self) -> Result<Stmt, SyntaxError> {
        self.advance();
        self.expect_op("(")?;
        // for (x in xs) / for (k, v in d) / for (let x in xs)
        let starts_with_let = self.is_keyword("let");
        let offset = usize::from(starts_with_let);
        let is_in = matches!(self.peek_at(offset), Tok::Ident(_))
            && (matches!(self.peek_at(offset + 1), Tok::Keyword("in"))
                || matches!(self.peek_at(offset + 1), Tok::Op(","))
                    && matches!(self.peek_at(offset + 2), Tok::Ident(_))
                    && matches!(self.peek_at(offset + 3), Tok::Keyword("in")));
        if is_in {
            if starts_with_let {
                self.advance();
            }
            let first = self.ident()?;
            let (key, value) = if self.eat_op(",") { (Some(first), self.ident()?) } else { (None, first) };
            if !self.eat_keyword("in") {
                return Err(self.unexpected("`in`"));
            }
            let pos = self.pos();
            let iterable = self.expression()?;
            self.expect_op(")")?;
            let body = Box::new(self.statement()?);
            return Ok(Stmt::ForIn { key, value, iterable, body, pos });
        }
        let init = if self.is_op(";") { None } else { Some(Box::new(self.statement_inner_no_end()?)) };
        self.expect_op(";")?;
        let cond = if self.is_op(";") { None } else { Some(self.expression()?) };
        self.expect_op(";")?;
        let step = if self.is_op(")") { None } else { Some(Box::new(self.statement_inner_no_end()?)) };
        self.expect_op(")")?;
        let body = Box::new(self.statement()?);
        Ok(Stmt::For { init, cond, step, body })
    }

    /// A `let`, an assignment or an expression without its `;` (the parts of a `for`).
    fn statement_inner_no_end(&mut self) -> Result<Stmt, SyntaxError> {
        let pos = self.pos();
        if self.eat_keyword("let") {
            let name = self.ident()?;
            let value = if self.eat_op(":=") { Some(self.expression()?) } else { None };
            return Ok(Stmt::Let(name, value));
        }
        let expr = self.expression()?;
        if self.eat_op(":=") {
            return Ok(Stmt::Assign { target: expr, value: self.expression()?, pos });
        }
        Ok(Stmt::Expr(expr))
    }

    pub(crate) fn expression(&mut self) -> Result<Expr, SyntaxError> {
        self.nested(Self::ternary)
    }

    fn ternary(&mut self) -> Result<Expr, SyntaxError> {
        let cond = self.nullish()?;
        if self.eat_op("?") {
            let then = self.expression()?;
            self.expect_op(":")?;
            let otherwise = self.expression()?;
            return Ok(Expr::Ternary(Box::new(cond), Box::new(then), Box::new(otherwise)));
        }
        Ok(cond)
    }

    fn nullish(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.or()?;
        while self.eat_op("??") {
            let right = self.or()?;
            left = Expr::Nullish(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn or(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.and()?;
        while self.eat_keyword("or") {
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.not()?;
        while self.eat_keyword("and") || self.eat_op("&&") {
            let right = self.not()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, SyntaxError> {
        if self.eat_keyword("not") || self.eat_op("!") {
            let inner = self.nested(Self::not)?;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, SyntaxError> {
        let left = self.concat()?;
        let pos = self.pos();
        let op = match self.peek().clone() {
            Tok::Op("=" | "==") => BinOp::Eq,
            Tok::Op("!=") => BinOp::NotEq,
            Tok::Op("<") => BinOp::Lt,
            Tok::Op("<=") => BinOp::LtEq,
            Tok::Op(">") => BinOp::Gt,
            Tok::Op(">=") => BinOp::GtEq,
            Tok::Op("=~") => BinOp::Regex,
            Tok::Op("!~") => BinOp::NotRegex,
            Tok::Op("=~*") => BinOp::IRegex,
            Tok::Op("!~*") => BinOp::NotIRegex,
            Tok::Keyword("like") => BinOp::Like,
            Tok::Keyword("ilike") => BinOp::ILike,
            Tok::Keyword("in") => BinOp::In,
            Tok::Keyword("not") => match self.peek_at(1) {
                Tok::Keyword("like") => BinOp::NotLike,
                Tok::Keyword("ilike") => BinOp::NotILike,
                Tok::Keyword("in") => BinOp::NotIn,
                _ => return Ok(left),
            },
            _ => return Ok(left),
        };
        if matches!(op, BinOp::NotLike | BinOp::NotILike | BinOp::NotIn) {
            self.advance();
        }
        self.advance();
        let right = self.concat()?;
        Ok(Expr::Binary { op, left: Box::new(left), right: Box::new(right), pos })
    }

    fn concat(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.additive()?;
        loop {
            let pos = self.pos();
            if !self.eat_op("||") {
                return Ok(left);
            }
            let right = self.additive()?;
            left = Expr::Binary { op: BinOp::Concat, left: Box::new(left), right: Box::new(right), pos };
        }
    }

    fn additive(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.multiplicative()?;
        loop {
            let pos = self.pos();
            let op = if self.eat_op("+") {
                BinOp::Add
            } else if self.eat_op("-") {
                BinOp::Sub
            } else {
                return Ok(left);
            };
            let right = self.multiplicative()?;
            left = Expr::Binary { op, left: Box::new(left), right: Box::new(right), pos };
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.unary()?;
        loop {
            let pos = self.pos();
            let op = if self.eat_op("*") {
                BinOp::Mul
            } else if self.eat_op("/") {
                BinOp::Div
            } else if self.eat_op("%") {
                BinOp::Mod
            } else {
                return Ok(left);
            };
            let right = self.unary()?;
            left = Expr::Binary { op, left: Box::new(left), right: Box::new(right), pos };
        }
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        let pos = self.pos();
        if self.eat_op("-") {
            let inner = self.nested(Self::unary)?;
            return Ok(match inner {
                Expr::Int(n) => Expr::Int(n.wrapping_neg()),
                Expr::Float(n) => Expr::Float(-n),
                other => Expr::Neg(Box::new(other), pos),
            });
        }
        if self.eat_op("+") {
            return self.nested(Self::unary);
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, SyntaxError> {
        let mut expr = self.primary()?;
        loop {
            let pos = self.pos();
            if self.eat_op("[") || self.eat_op("?.[") {
                let nullish = matches!(self.tokens[self.at - 1].tok, Tok::Op("?.["));
                let index = self.expression()?;
                self.expect_op("]")?;
                expr = Expr::Index { target: Box::new(expr), index: Box::new(index), nullish, pos };
            } else if self.is_op(".") || self.is_op("?.") {
                let nullish = self.is_op("?.");
                self.advance();
                let index = match self.advance() {
                    Tok::Ident(name) => Expr::Str(name.into()),
                    Tok::Keyword(word) => Expr::Str(word.into()),
                    Tok::Int(n) => Expr::Int(n),
                    Tok::Str(text) => Expr::Str(text.into()),
                    _ => return Err(self.error("expected a field name after `.`")),
                };
                expr = Expr::Index { target: Box::new(expr), index: Box::new(index), nullish, pos };
            } else if self.is_op("(") && matches!(expr, Expr::Index { .. }) {
                return Err(self.error("only named functions and lambdas in variables can be called"));
            } else {
                return Ok(expr);
            }
        }
    }

    fn list(&mut self, close: &str) -> Result<Vec<Expr>, SyntaxError> {
        let mut items = Vec::new();
        while !self.eat_op(close) {
            items.push(self.expression()?);
            if !self.is_op(close) {
                self.expect_op(",")?;
            }
        }
        Ok(items)
    }

    /// Whether the `(` at the cursor opens a lambda's parameters: `(a, b) ->`.
    fn lambda_ahead(&self) -> bool {
        let mut n = 1;
        loop {
            match self.peek_at(n) {
                Tok::Op(")") => return matches!(self.peek_at(n + 1), Tok::Op("->" | "=>")),
                Tok::Ident(_) => n += 1,
                Tok::Op(",") => n += 1,
                _ => return false,
            }
        }
    }

    fn lambda_body(&mut self, params: Vec<Rc<str>>) -> Result<Expr, SyntaxError> {
        let body = if self.is_op("{") { self.block()? } else { vec![Stmt::Return(Some(self.expression()?))] };
        Ok(Expr::Lambda(Rc::new(Function { name: "lambda".into(), params, body })))
    }

    fn primary(&mut self) -> Result<Expr, SyntaxError> {
        let pos = self.pos();
        let start = self.at;
        match self.advance() {
            Tok::Int(n) => Ok(Expr::Int(n)),
            Tok::Float(n) => Ok(Expr::Float(n)),
            Tok::Str(text) => Ok(Expr::Str(text.into())),
            Tok::FStr(parts) => self.fstring(parts),
            Tok::Keyword("true") => Ok(Expr::Bool(true)),
            Tok::Keyword("false") => Ok(Expr::Bool(false)),
            Tok::Keyword("null") => Ok(Expr::Null),
            Tok::Ident(name) => {
                if self.is_op("->") || self.is_op("=>") {
                    self.advance();
                    return self.lambda_body(vec![name.into()]);
                }
                if self.eat_op("(") {
                    let args = self.list(")")?;
                    return Ok(Expr::Call { name: name.into(), args, pos });
                }
                Ok(Expr::Var(name.into(), pos))
            }
            Tok::Op("(") => {
                self.at = start;
                if self.lambda_ahead() {
                    let params = self.params()?;
                    self.advance();
                    return self.lambda_body(params);
                }
                self.advance();
                let first = self.expression()?;
                if self.eat_op(")") {
                    return Ok(first);
                }
                self.expect_op(",")?;
                let mut items = vec![first];
                items.extend(self.list(")")?);
                Ok(Expr::Tuple(items))
            }
            Tok::Op("[") => Ok(Expr::Array(self.list("]")?)),
            Tok::Op("{") => {
                let mut pairs = Vec::new();
                while !self.eat_op("}") {
                    let key = self.expression()?;
                    self.expect_op(":")?;
                    let value = self.expression()?;
                    pairs.push((key, value));
                    if !self.is_op("}") {
                        self.expect_op(",")?;
                    }
                }
                Ok(Expr::Dict(pairs))
            }
            _ => {
                self.at = start;
                Err(self.unexpected("an expression"))
            }
        }
    }

    fn fstring(&mut self, parts: Vec<FPart>) -> Result<Expr, SyntaxError> {
        let mut segments = Vec::with_capacity(parts.len());
        for part in parts {
            match part {
                FPart::Text(text) => segments.push(FSegment::Text(text.into())),
                FPart::Code { source, line, column } => {
                    let tokens = lex_at(&source, line, column)?;
                    let mut inner = Parser { tokens, at: 0, depth: self.depth + 1 };
                    let expr = inner.expression()?;
                    if inner.peek() != &Tok::End {
                        return Err(inner.unexpected("`}`"));
                    }
                    segments.push(FSegment::Code(expr));
                }
            }
        }
        Ok(Expr::FString(segments))
    }
}
