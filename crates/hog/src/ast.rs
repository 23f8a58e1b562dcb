//! The syntax tree the parser builds and the interpreter walks.

use std::rc::Rc;

/// Where a node starts, for run-time error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    FString(Vec<FSegment>),
    Var(Rc<str>, Pos),
    Array(Vec<Expr>),
    Tuple(Vec<Expr>),
    Dict(Vec<(Expr, Expr)>),
    /// `a.b`, `a[b]`; `nullish`: `?.`.
    Index {
        target: Box<Expr>,
        index: Box<Expr>,
        nullish: bool,
        pos: Pos,
    },
    Call {
        name: Rc<str>,
        args: Vec<Expr>,
        pos: Pos,
    },
    /// A call of a value (`f(x)` where `f` is a lambda in a variable is a `Call`).
    Binary {
        op: BinOp,
        left: Box<Expr>,
        right: Box<Expr>,
        pos: Pos,
    },
    Not(Box<Expr>),
    Neg(Box<Expr>, Pos),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Nullish(Box<Expr>, Box<Expr>),
    Ternary(Box<Expr>, Box<Expr>, Box<Expr>),
    Lambda(Rc<Function>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FSegment {
    Text(Rc<str>),
    Code(Expr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Concat,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    Like,
    ILike,
    NotLike,
    NotILike,
    Regex,
    NotRegex,
    IRegex,
    NotIRegex,
    In,
    NotIn,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stmt {
    Let(Rc<str>, Option<Expr>),
    Assign { target: Expr, value: Expr, pos: Pos },
    Expr(Expr),
    If(Expr, Box<Stmt>, Option<Box<Stmt>>),
    While(Expr, Box<Stmt>),
    For { init: Option<Box<Stmt>>, cond: Option<Expr>, step: Option<Box<Stmt>>, body: Box<Stmt> },
    ForIn { key: Option<Rc<str>>, value: Rc<str>, iterable: Expr, body: Box<Stmt>, pos: Pos },
    Function(Rc<Function>),
    Return(Option<Expr>),
    Break,
    Continue,
    Throw(Expr, Pos),
    Block(Vec<Stmt>),
}

#[derive(Debug, PartialEq)]
pub(crate) struct Function {
    pub name: Rc<str>,
    pub params: Vec<Rc<str>>,
    pub body: Vec<Stmt>,
}
