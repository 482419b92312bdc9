//! A bounded reader of the pickle programs PyTorch writes for state dicts.
//!
//! A pickle is a program for a stack machine; this module runs the opcodes of protocols
//! 0–5 that describe data (no code is ever called: `GLOBAL` and `REDUCE` only record what
//! would have been called) and builds an [`Arena`] of [`Node`]s. It is written to take any
//! bytes without panicking, hanging or exhausting memory:
//! - every length is checked against the bytes that remain before anything is allocated;
//! - objects live in one flat arena and refer to each other by index, so a memo fetched a
//!   million times ("billion laughs") is a million indices, not a million copies, and a
//!   deeply nested object is dropped without recursion (no stack overflow, whatever the
//!   depth);
//! - the number of objects is bounded ([`MAX_NODES`]), and so is the pickle itself (its
//!   caller reads at most [`crate::limits::MAX_PICKLE_BYTES`]).

use std::collections::HashMap;

/// Objects one pickle may create.
pub const MAX_NODES: usize = 4_000_000;

/// One object of the pickle.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A float.
    Float(f64),
    /// A text string.
    Str(String),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A tuple (indices into the arena).
    Tuple(Vec<usize>),
    /// A list.
    List(Vec<usize>),
    /// A dict, in insertion order (also `collections.OrderedDict`).
    Dict(Vec<(usize, usize)>),
    /// A global name `module.name` (a class or function; never resolved).
    Global(String, String),
    /// The result of calling `callable` with `args` (`REDUCE`, `NEWOBJ`), not computed;
    /// `state` is what `BUILD` set on it.
    Call {
        /// The callable.
        callable: usize,
        /// Its argument tuple.
        args: usize,
        /// State set by `BUILD`, if any.
        state: Option<usize>,
    },
    /// A persistent id (`BINPERSID`): PyTorch's reference to a storage.
    PersistentId(usize),
}

/// The objects of a pickle and its result.
#[derive(Debug, Default)]
pub struct Arena {
    nodes: Vec<Node>,
}

impl Arena {
    /// The object at `index`.
    pub fn get(&self, index: usize) -> Option<&Node> {
        self.nodes.get(index)
    }

    /// The string at `index`, if it is one.
    pub fn str(&self, index: usize) -> Option<&str> {
        match self.get(index)? {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer at `index`, if it is one.
    pub fn int(&self, index: usize) -> Option<i64> {
        match self.get(index)? {
            Node::Int(v) => Some(*v),
            Node::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    /// The items of the tuple at `index`, if it is one.
    pub fn tuple(&self, index: usize) -> Option<&[usize]> {
        match self.get(index)? {
            Node::Tuple(items) => Some(items),
            _ => None,
        }
    }

    /// `(module, name)` of the global at `index`, if it is one.
    pub fn global(&self, index: usize) -> Option<(&str, &str)> {
        match self.get(index)? {
            Node::Global(m, n) => Some((m, n)),
            _ => None,
        }
    }

    fn push(&mut self, node: Node) -> Result<usize, String> {
        if self.nodes.len() >= MAX_NODES {
            return Err(format!("more than {MAX_NODES} objects"));
        }
        self.nodes.push(node);
        Ok(self.nodes.len() - 1)
    }
}

/// An entry of the machine's stack.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Item {
    Mark,
    Obj(usize),
}

/// The machine: input, stack, memo and arena.
struct Machine<'a> {
    bytes: &'a [u8],
    pos: usize,
    stack: Vec<Item>,
    memo: HashMap<u64, usize>,
    arena: Arena,
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "truncated: {n} bytes wanted at byte {}, {} left",
                    self.pos,
                    self.bytes.len() - self.pos
                )
            })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn le(&mut self, n: usize) -> Result<u64, String> {
        let b = self.take(n)?;
        Ok(b.iter()
            .rev()
            .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.bytes[self.pos..];
        let len = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("truncated: a line without its end")?;
        let line = self.take(len + 1)?;
        Ok(String::from_utf8_lossy(&line[..len])
            .trim_end_matches('\r')
            .to_string())
    }

    fn text(&mut self, n: u64) -> Result<String, String> {
        let n = usize::try_from(n).map_err(|_| "string length too large".to_string())?;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| "a string is not UTF-8".to_string())
    }

    fn push(&mut self, node: Node) -> Result<(), String> {
        let i = self.arena.push(node)?;
        self.stack.push(Item::Obj(i));
        Ok(())
    }

    fn pop(&mut self) -> Result<usize, String> {
        match self.stack.pop() {
            Some(Item::Obj(i)) => Ok(i),
            Some(Item::Mark) => Err("a mark where an object was expected".into()),
            None => Err("the stack is empty".into()),
        }
    }

    fn top(&self) -> Result<usize, String> {
        match self.stack.last() {
            Some(Item::Obj(i)) => Ok(*i),
            Some(Item::Mark) => Err("a mark where an object was expected".into()),
            None => Err("the stack is empty".into()),
        }
    }

    /// The objects above the topmost mark (the mark is removed).
    fn pop_mark(&mut self) -> Result<Vec<usize>, String> {
        let at = self
            .stack
            .iter()
            .rposition(|i| *i == Item::Mark)
            .ok_or("no mark on the stack")?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        items
            .into_iter()
            .map(|i| match i {
                Item::Obj(i) => Ok(i),
                Item::Mark => Err("a mark inside a marked group".to_string()),
            })
            .collect()
    }

    fn memo_put(&mut self, key: u64) -> Result<(), String> {
        let top = self.top()?;
        if self.memo.len() >= MAX_NODES && !self.memo.contains_key(&key) {
            return Err("too many memo entries".into());
        }
        self.memo.insert(key, top);
        Ok(())
    }

    fn memo_get(&mut self, key: u64) -> Result<(), String> {
        let i = *self
            .memo
            .get(&key)
            .ok_or_else(|| format!("memo entry {key} is not set"))?;
        self.stack.push(Item::Obj(i));
        Ok(())
    }

    fn append(&mut self, list: usize, items: Vec<usize>) -> Result<(), String> {
        match self.arena.nodes.get_mut(list) {
            Some(Node::List(v)) => {
                v.extend(items);
                Ok(())
            }
            _ => Err("APPEND to something that is not a list".into()),
        }
    }

    fn set_items(&mut self, dict: usize, items: Vec<usize>) -> Result<(), String> {
        if !items.len().is_multiple_of(2) {
            return Err("SETITEMS with an odd number of objects".into());
        }
        match self.arena.nodes.get_mut(dict) {
            Some(Node::Dict(d)) => {
                d.extend(items.chunks_exact(2).map(|p| (p[0], p[1])));
                Ok(())
            }
            _ => Err("SETITEM on something that is not a dict".into()),
        }
    }

    /// `callable(*args)`: a dict for `collections.OrderedDict` (its items follow), else a
    /// recorded call.
    fn call(&mut self, callable: usize, args: usize) -> Result<(), String> {
        let is_dict = matches!(
            self.arena.global(callable),
            Some(("collections", "OrderedDict" | "defaultdict"))
        );
        if is_dict {
            self.push(Node::Dict(Vec::new()))
        } else {
            self.push(Node::Call {
                callable,
                args,
                state: None,
            })
        }
    }

    fn build(&mut self) -> Result<(), String> {
        let state = self.pop()?;
        let obj = self.top()?;
        match self.arena.nodes.get_mut(obj) {
            Some(Node::Call { state: s, .. }) => *s = Some(state),
            // A dict's attributes (an OrderedDict's `_metadata`) are not needed.
            Some(Node::Dict(_)) => {}
            _ => return Err("BUILD on an object that cannot take state".into()),
        }
        Ok(())
    }

    /// Runs one opcode; returns true at STOP.
    fn step(&mut self) -> Result<bool, String> {
        let at = self.pos;
        let op = self.u8()?;
        match op {
            0x80 => {
                self.u8()?; // PROTO
            }
            0x95 => {
                self.le(8)?; // FRAME: a length hint only
            }
            b'.' => return Ok(true),
            b'(' => self.stack.push(Item::Mark),
            b'0' => {
                self.stack.pop().ok_or("POP on an empty stack")?;
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let top = self.top()?;
                self.stack.push(Item::Obj(top));
            }
            b'N' => self.push(Node::None)?,
            0x88 => self.push(Node::Bool(true))?,
            0x89 => self.push(Node::Bool(false))?,
            b'J' => {
                let v = self.le(4)? as u32 as i32;
                self.push(Node::Int(i64::from(v)))?;
            }
            b'K' => {
                let v = self.le(1)?;
                self.push(Node::Int(v as i64))?;
            }
            b'M' => {
                let v = self.le(2)?;
                self.push(Node::Int(v as i64))?;
            }
            0x8a | 0x8b => {
                let n = if op == 0x8a { self.le(1)? } else { self.le(4)? };
                if n > 8 {
                    return Err(format!("an integer of {n} bytes does not fit in 64 bits"));
                }
                let b = self.take(n as usize)?;
                let mut v: i64 = 0;
                for (i, &x) in b.iter().enumerate() {
                    v |= i64::from(x) << (8 * i);
                }
                // Sign-extend from the top byte.
                if n > 0 && n < 8 && b[n as usize - 1] & 0x80 != 0 {
                    v |= -1i64 << (8 * n);
                }
                self.push(Node::Int(v))?;
            }
            b'I' => {
                let line = self.line()?;
                let node = match line.as_str() {
                    "00" => Node::Bool(false),
                    "01" => Node::Bool(true),
                    s => Node::Int(s.parse().map_err(|_| format!("bad INT '{s}'"))?),
                };
                self.push(node)?;
            }
            b'G' => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                self.push(Node::Float(f64::from_be_bytes(a)))?;
            }
            b'X' | 0x8c | 0x8d => {
                let n = match op {
                    b'X' => self.le(4)?,
                    0x8c => self.le(1)?,
                    _ => self.le(8)?,
                };
                let s = self.text(n)?;
                self.push(Node::Str(s))?;
            }
            b'U' | b'T' | b'C' | b'B' | 0x8e => {
                let n = match op {
                    b'U' | b'C' => self.le(1)?,
                    0x8e => self.le(8)?,
                    _ => self.le(4)?,
                };
                let n = usize::try_from(n).map_err(|_| "length too large".to_string())?;
                let b = self.take(n)?.to_vec();
                self.push(Node::Bytes(b))?;
            }
            b')' => self.push(Node::Tuple(Vec::new()))?,
            b't' => {
                let items = self.pop_mark()?;
                self.push(Node::Tuple(items))?;
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.pop()?);
                }
                items.reverse();
                self.push(Node::Tuple(items))?;
            }
            b']' => self.push(Node::List(Vec::new()))?,
            b'l' => {
                let items = self.pop_mark()?;
                self.push(Node::List(items))?;
            }
            b'a' => {
                let v = self.pop()?;
                let list = self.top()?;
                self.append(list, vec![v])?;
            }
            b'e' => {
                let items = self.pop_mark()?;
                let list = self.top()?;
                self.append(list, items)?;
            }
            b'}' => self.push(Node::Dict(Vec::new()))?,
            b'd' => {
                let items = self.pop_mark()?;
                if !items.len().is_multiple_of(2) {
                    return Err("DICT with an odd number of objects".into());
                }
                let pairs = items.chunks_exact(2).map(|p| (p[0], p[1])).collect();
                self.push(Node::Dict(pairs))?;
            }
            b's' => {
                let value = self.pop()?;
                let key = self.pop()?;
                let dict = self.top()?;
                self.set_items(dict, vec![key, value])?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                let dict = self.top()?;
                self.set_items(dict, items)?;
            }
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                self.push(Node::Global(module, name))?;
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (Some(module), Some(name)) = (self.arena.str(module), self.arena.str(name))
                else {
                    return Err("STACK_GLOBAL of something that is not two strings".into());
                };
                let node = Node::Global(module.to_string(), name.to_string());
                self.push(node)?;
            }
            b'R' | 0x81 => {
                let args = self.pop()?;
                let callable = self.pop()?;
                self.call(callable, args)?;
            }
            0x92 => {
                self.pop()?; // keyword arguments
                let args = self.pop()?;
                let callable = self.pop()?;
                self.call(callable, args)?;
            }
            b'b' => self.build()?,
            b'Q' => {
                let id = self.pop()?;
                self.push(Node::PersistentId(id))?;
            }
            b'h' => {
                let k = self.le(1)?;
                self.memo_get(k)?;
            }
            b'j' => {
                let k = self.le(4)?;
                self.memo_get(k)?;
            }
            b'q' => {
                let k = self.le(1)?;
                self.memo_put(k)?;
            }
            b'r' => {
                let k = self.le(4)?;
                self.memo_put(k)?;
            }
            0x94 => {
                let k = self.memo.len() as u64;
                self.memo_put(k)?;
            }
            other => {
                return Err(format!("unsupported opcode 0x{other:02x} at byte {at}"));
            }
        }
        Ok(false)
    }
}

/// Runs the pickle in `bytes`; returns the arena and the index of the result. The error
/// says what went wrong and where.
pub fn parse(bytes: &[u8]) -> Result<(Arena, usize), String> {
    let mut m = Machine {
        bytes,
        pos: 0,
        stack: Vec::new(),
        memo: HashMap::new(),
        arena: Arena::default(),
    };
    loop {
        let at = m.pos;
        match m.step() {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => return Err(format!("{e} (opcode at byte {at})")),
        }
    }
    let result = m.pop()?;
    Ok((m.arena, result))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{'a': (1, 2.5), 'b': [None, True]}` as Python's pickle protocol 2 writes it.
    const SAMPLE: &[u8] = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01K\x01G@\x04\x00\x00\x00\x00\x00\x00\x86q\x02X\x01\x00\x00\x00bq\x03]q\x04(N\x88eu.";

    #[test]
    fn reads_what_python_writes() {
        let (a, root) = parse(SAMPLE).unwrap();
        let Some(Node::Dict(items)) = a.get(root) else {
            panic!("{:?}", a.get(root))
        };
        assert_eq!(items.len(), 2);
        assert_eq!(a.str(items[0].0), Some("a"));
        let t = a.tuple(items[0].1).unwrap();
        assert_eq!(a.int(t[0]), Some(1));
        assert_eq!(a.get(t[1]), Some(&Node::Float(2.5)));
        assert_eq!(a.str(items[1].0), Some("b"));
        let Some(Node::List(l)) = a.get(items[1].1) else {
            panic!()
        };
        assert_eq!(a.get(l[0]), Some(&Node::None));
        assert_eq!(a.get(l[1]), Some(&Node::Bool(true)));
    }

    #[test]
    fn every_prefix_and_every_single_byte_change_is_an_answer_not_a_panic() {
        for n in 0..SAMPLE.len() {
            assert!(parse(&SAMPLE[..n]).is_err(), "prefix {n}");
        }
        for i in 0..SAMPLE.len() {
            for b in [0u8, 0x7f, 0xff, b'(', b'h', b'.'] {
                let mut bytes = SAMPLE.to_vec();
                bytes[i] = b;
                let _ = parse(&bytes);
            }
        }
    }

    #[test]
    fn long_integers_are_sign_extended() {
        // LONG1 of 2 bytes 0xff 0xff = -1; of 2 bytes 0x00 0x80 = -32768.
        let (a, r) = parse(b"\x8a\x02\xff\xff.").unwrap();
        assert_eq!(a.int(r), Some(-1));
        let (a, r) = parse(b"\x8a\x02\x00\x80.").unwrap();
        assert_eq!(a.int(r), Some(-32768));
        assert!(parse(b"\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x00.").is_err());
    }

    #[test]
    fn billion_laughs_is_shared_not_copied() {
        // A list memoised as 0, then 30 rounds of: a list of ten copies of memo 0,
        // memoised as 0 again. Copying would need 10^30 objects; sharing needs a few
        // hundred.
        let mut p = b"\x80\x02]q\x00".to_vec();
        for _ in 0..30 {
            p.extend_from_slice(b"(");
            for _ in 0..10 {
                p.extend_from_slice(b"h\x00");
            }
            p.extend_from_slice(b"lq\x00");
        }
        p.push(b'.');
        let (a, _) = parse(&p).unwrap();
        assert!(a.nodes.len() < 100, "{}", a.nodes.len());
    }

    #[test]
    fn deep_nesting_is_dropped_without_recursion() {
        // 200,000 nested one-element tuples: `N` then `\x85` repeated.
        let mut p = b"N".to_vec();
        p.extend(std::iter::repeat_n(0x85u8, 200_000));
        p.push(b'.');
        let (a, root) = parse(&p).unwrap();
        assert_eq!(a.tuple(root).map(<[usize]>::len), Some(1));
        drop(a);
    }

    #[test]
    fn malformed_programs_are_errors() {
        for (bytes, want) in [
            (&b""[..], "truncated"),
            (b"X\xff\xff\xff\xff", "truncated"),
            (b"t.", "no mark"),
            (b"NNa.", "not a list"),
            (b"h\x05.", "memo entry 5"),
            (b"(N(s.", "mark"),
            (b"\xfe", "unsupported opcode 0xfe"),
            (b"N", "truncated"),
            (b".", "empty"),
        ] {
            let e = parse(bytes).unwrap_err();
            assert!(e.contains(want), "{bytes:?}: {e}");
        }
    }
}
