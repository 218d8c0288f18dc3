//! A streaming pickle opcode scanner: lists imported globals without executing anything.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read};

use crate::AnalyzeError;

/// Longest line argument (GLOBAL, INT, ...) accepted.
const MAX_LINE: u64 = 64 << 10;
/// Strings longer than this are skipped, not kept (only short names matter for globals).
const MAX_KEPT_STRING: u64 = 1024;
/// Memo entries remembered; later ones are forgotten (a STACK_GLOBAL using them is flagged).
const MAX_MEMO: usize = 100_000;

/// What a scan of one pickle stream found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PickleScan {
    /// Every distinct global imported, as `module.name`, in first-seen order.
    pub globals: Vec<String>,
    /// The globals outside the allow-list (a non-empty list means unsafe).
    pub unsafe_globals: Vec<String>,
    pub opcodes: u64,
    /// Pickles read back to back (legacy torch files hold several).
    pub pickles: u32,
    /// Bytes left after the last pickle (legacy torch files keep raw storages there).
    pub trailing_data: bool,
}

/// Globals that only rebuild data (tensors, storages, containers, numpy arrays).
pub(crate) fn allowed(global: &str) -> bool {
    const EXACT: &[&str] = &[
        "collections.OrderedDict",
        "collections.defaultdict",
        "collections.Counter",
        "collections.deque",
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch._utils._rebuild_qtensor",
        "torch._utils._rebuild_sparse_tensor",
        "torch._utils._rebuild_meta_tensor_no_storage",
        "torch._utils._rebuild_device_tensor_from_numpy",
        "torch.nn.parameter.Parameter",
        "torch.Size",
        "torch.device",
        "torch.dtype",
        "torch.storage.UntypedStorage",
        "torch.serialization._get_layout",
        "torch.strided",
        "torch.sparse_coo",
        "torch._tensor._rebuild_from_type_v2",
        "torch.Tensor",
        "numpy.core.multiarray._reconstruct",
        "numpy._core.multiarray._reconstruct",
        "numpy.core.multiarray.scalar",
        "numpy._core.multiarray.scalar",
        "numpy.ndarray",
        "numpy.dtype",
        "_codecs.encode",
        "builtins.set",
        "builtins.frozenset",
        "builtins.dict",
        "builtins.list",
        "builtins.tuple",
        "builtins.int",
        "builtins.float",
        "builtins.complex",
        "builtins.bool",
        "builtins.bytes",
        "builtins.bytearray",
        "builtins.str",
        "builtins.slice",
        "builtins.range",
        "__builtin__.set",
        "__builtin__.frozenset",
        "copy_reg._reconstructor",
        "copyreg._reconstructor",
        "builtins.object",
        "__builtin__.object",
    ];
    if EXACT.contains(&global) {
        return true;
    }
    // torch.FloatStorage, torch.cuda.HalfStorage, torch.float32, torch.bfloat16, ...
    let dtype_like = |n: &str| {
        n.ends_with("Storage")
            || [
                "float", "double", "half", "bfloat16", "int", "uint", "long", "short", "bool",
                "complex", "qint", "quint",
            ]
            .iter()
            .any(|p| n.starts_with(p) && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    };
    match global.rsplit_once('.') {
        Some(("torch" | "torch.cuda", name)) => dtype_like(name),
        Some(("numpy" | "numpy.dtypes", name)) => name.ends_with("DType") || name == "dtype",
        _ => false,
    }
}

struct Scanner<R> {
    r: BufReader<R>,
    memo: HashMap<u64, String>,
    next_memo: u64,
    /// The last two stack pushes: `Some` for a short string, `None` for anything else.
    recent: [Option<String>; 2],
    scan: PickleScan,
}

fn truncated() -> AnalyzeError {
    AnalyzeError::Truncated("pickle stream ends inside an opcode".into())
}

impl<R: Read> Scanner<R> {
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], AnalyzeError> {
        let mut b = [0u8; N];
        self.r.read_exact(&mut b).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => truncated(),
            _ => AnalyzeError::Read(e),
        })?;
        Ok(b)
    }
    fn line(&mut self) -> Result<String, AnalyzeError> {
        let mut buf = Vec::new();
        self.r.by_ref().take(MAX_LINE).read_until(b'\n', &mut buf)?;
        if buf.pop() != Some(b'\n') {
            return Err(if buf.len() as u64 >= MAX_LINE - 1 {
                AnalyzeError::BadPickle("line argument too long".into())
            } else {
                truncated()
            });
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
    /// Reads a string argument of `len` bytes, keeping it only when short.
    fn string(&mut self, len: u64) -> Result<Option<String>, AnalyzeError> {
        if len <= MAX_KEPT_STRING {
            let mut buf = Vec::new();
            self.r.by_ref().take(len).read_to_end(&mut buf)?;
            if buf.len() as u64 != len {
                return Err(truncated());
            }
            return Ok(Some(String::from_utf8_lossy(&buf).into_owned()));
        }
        self.skip(len)?;
        Ok(None)
    }
    fn skip(&mut self, len: u64) -> Result<(), AnalyzeError> {
        let copied = io::copy(&mut self.r.by_ref().take(len), &mut io::sink())?;
        if copied == len {
            Ok(())
        } else {
            Err(truncated())
        }
    }
    fn push(&mut self, v: Option<String>) {
        self.recent.swap(0, 1);
        self.recent[1] = v;
    }
    fn memoize(&mut self, idx: u64) {
        if let Some(s) = &self.recent[1] {
            if self.memo.len() < MAX_MEMO || self.memo.contains_key(&idx) {
                self.memo.insert(idx, s.clone());
            }
        }
    }
    fn global(&mut self, name: String) {
        if !self.scan.globals.contains(&name) {
            if !allowed(&name) {
                self.scan.unsafe_globals.push(name.clone());
            }
            self.scan.globals.push(name);
        }
    }
    fn len4(&mut self) -> Result<u64, AnalyzeError> {
        Ok(u64::from(u32::from_le_bytes(self.bytes()?)))
    }
    fn len8(&mut self) -> Result<u64, AnalyzeError> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }

    /// Handles one opcode; returns false after STOP.
    fn step(&mut self, op: u8) -> Result<bool, AnalyzeError> {
        self.scan.opcodes += 1;
        let mut pushed: Option<String> = None;
        match op {
            b'.' => return Ok(false),
            0x80 => {
                let [v] = self.bytes()?;
                if v > 5 {
                    return Err(AnalyzeError::BadPickle(format!("unknown protocol {v}")));
                }
                return Ok(true);
            }
            0x95 => {
                self.len8()?; // FRAME: opcodes follow inline.
                return Ok(true);
            }
            0x94 => {
                self.memoize(self.next_memo);
                self.next_memo += 1;
                return Ok(true);
            }
            b'q' => {
                let [i] = self.bytes()?;
                self.memoize(u64::from(i));
                return Ok(true);
            }
            b'r' => {
                let i = self.len4()?;
                self.memoize(i);
                return Ok(true);
            }
            b'p' => {
                let i = self.line()?.trim().parse().unwrap_or(u64::MAX);
                self.memoize(i);
                return Ok(true);
            }
            b'h' => {
                let [i] = self.bytes()?;
                pushed = self.memo.get(&u64::from(i)).cloned();
            }
            b'j' => {
                let i = self.len4()?;
                pushed = self.memo.get(&i).cloned();
            }
            b'g' => {
                let i: u64 = self.line()?.trim().parse().unwrap_or(u64::MAX);
                pushed = self.memo.get(&i).cloned();
            }
            b'c' | b'i' => {
                let module = self.line()?;
                let name = self.line()?;
                self.global(format!("{module}.{name}"));
            }
            0x93 => {
                let [m, n] = std::mem::take(&mut self.recent);
                match (m, n) {
                    (Some(m), Some(n)) => self.global(format!("{m}.{n}")),
                    _ => self.global("<unresolved STACK_GLOBAL>".into()),
                }
            }
            0x82..=0x84 => {
                let code = match op {
                    0x82 => u64::from(self.bytes::<1>()?[0]),
                    0x83 => u64::from(u16::from_le_bytes(self.bytes()?)),
                    _ => self.len4()?,
                };
                self.global(format!("<extension {code}>"));
            }
            b'U' | b'C' | 0x8c => {
                let [n] = self.bytes()?;
                let s = self.string(u64::from(n))?;
                pushed = s.filter(|_| op != b'C');
            }
            b'T' | b'X' | b'B' => {
                let n = self.len4()?;
                let s = self.string(n)?;
                pushed = s.filter(|_| op != b'B');
            }
            0x8d | 0x8e | 0x96 => {
                let n = self.len8()?;
                let s = self.string(n)?;
                pushed = s.filter(|_| op == 0x8d);
            }
            0x8a => {
                let [n] = self.bytes()?;
                self.skip(u64::from(n))?;
            }
            0x8b => {
                let n = self.len4()?;
                self.skip(n)?;
            }
            b'S' | b'V' => {
                let l = self.line()?;
                pushed = Some(if op == b'S' {
                    l.trim_matches(|c| c == '\'' || c == '"').to_owned()
                } else {
                    l
                });
            }
            b'F' | b'I' | b'L' | b'P' => {
                self.line()?;
            }
            b'K' => {
                self.bytes::<1>()?;
            }
            b'M' => {
                self.bytes::<2>()?;
            }
            b'J' => {
                self.bytes::<4>()?;
            }
            b'G' => {
                self.bytes::<8>()?;
            }
            b'('
            | b'0'
            | b'1'
            | b'2'
            | b'N'
            | b'Q'
            | b'R'
            | b'a'
            | b'b'
            | b'd'
            | b'}'
            | b'e'
            | b'l'
            | b']'
            | b'o'
            | b's'
            | b't'
            | b')'
            | b'u'
            | 0x81
            | 0x85..=0x89
            | 0x8f
            | 0x90..=0x92
            | 0x97
            | 0x98 => {}
            other => {
                return Err(AnalyzeError::BadPickle(format!(
                    "unknown opcode 0x{other:02x} after {} opcodes",
                    self.scan.opcodes - 1
                )))
            }
        }
        self.push(pushed);
        Ok(true)
    }
}

/// Scans a stream of one or more pickles (back to back, as legacy torch files write them)
/// and lists the globals they import. Nothing is executed and large values are skipped.
pub fn scan_pickle<R: Read>(reader: R) -> Result<PickleScan, AnalyzeError> {
    let mut s = Scanner {
        r: BufReader::new(reader),
        memo: HashMap::new(),
        next_memo: 0,
        recent: [None, None],
        scan: PickleScan::default(),
    };
    loop {
        let [op] = s.bytes::<1>().map_err(|e| match (e, s.scan.opcodes) {
            (AnalyzeError::Truncated(_), 0) => AnalyzeError::BadPickle("empty stream".into()),
            (e, _) => e,
        })?;
        if !s.step(op)? {
            s.scan.pickles += 1;
            // Another pickle follows only if the next byte opens one with PROTO.
            match s.r.fill_buf()?.first() {
                None => return Ok(s.scan),
                Some(0x80) => {}
                Some(_) => {
                    s.scan.trailing_data = true;
                    return Ok(s.scan);
                }
            }
        }
    }
}
