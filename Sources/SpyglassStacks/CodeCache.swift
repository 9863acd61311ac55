//===--- CodeCache.swift - code objects, read once ----------------------------===//
//
// A code object is read once per process and then known by a small id (`CodeID`), which never
// changes meaning: one found replaced (freed, and another allocated at its address) is forgotten
// and read again under a new id. A cached one is trusted for `revalidationNanoseconds`, then
// checked again by the two pointers that tell it (`co_filename`, `co_name`), in one batch per
// walk. Lines are decoded from the line table once per (code object, instruction), a few
// instructions remembered per code object.
//
//===----------------------------------------------------------------------===//

import SpyglassLayouts
import SpyglassProcess

/// What a code object says about itself, read once.
package struct CodeInfo: Sendable, Equatable {
  /// `co_qualname` on 3.11+, else `co_name`.
  package var name: String
  /// `co_name`.
  package var shortName: String
  package var filename: String
  package var firstLine: Int
  package var lineTable: [UInt8]
  /// `_co_firsttraceable` (3.11+): instructions before it belong to an incomplete frame.
  package var firstTraceable: Int
  /// The `co_filename` and `co_name` pointers, which tell a code object from another allocated at
  /// the same address.
  package var identity: (UInt64, UInt64)
  /// `co_argcount` (positional parameters, py-spy's "arguments"), `co_nlocals`, and the names
  /// tuples the locals are named by.
  package var argumentCount: Int
  package var localCount: Int
  package var varnames: RemoteAddress
  package var localsKinds: RemoteAddress
  /// ≤3.10: the names of the cell and free variables, whose cells follow the fast locals.
  package var cellvars: RemoteAddress = 0
  package var freevars: RemoteAddress = 0

  package init(
    name: String, shortName: String, filename: String, firstLine: Int, lineTable: [UInt8] = [],
    firstTraceable: Int = 0, identity: (UInt64, UInt64) = (0, 0), argumentCount: Int = 0, localCount: Int = 0,
    varnames: RemoteAddress = 0, localsKinds: RemoteAddress = 0
  ) {
    self.name = name
    self.shortName = shortName
    self.filename = filename
    self.firstLine = firstLine
    self.lineTable = lineTable
    self.firstTraceable = firstTraceable
    self.identity = identity
    self.argumentCount = argumentCount
    self.localCount = localCount
    self.varnames = varnames
    self.localsKinds = localsKinds
  }

  package static func == (a: CodeInfo, b: CodeInfo) -> Bool {
    a.name == b.name && a.filename == b.filename && a.firstLine == b.firstLine && a.identity == b.identity
  }
}

/// One remembered (instruction offset, line) pair of a code object.
private struct LineMemo {
  static let slots = 8
  var lasti: Int32 = -1
  var line: Int32 = 0
}

package final class CodeCache {
  /// Every code object read, by id.
  package private(set) var codes: [CodeInfo] = []
  private var addresses: [RemoteAddress] = []
  private var index: [RemoteAddress: CodeID] = [:]
  /// When each was last checked against the target (monotonic nanoseconds).
  private var checkedAt: [UInt64] = []
  /// The last ids looked up, by address (direct-mapped in front of `index`).
  private var recent = [(address: RemoteAddress, id: CodeID)](repeating: (0, 0), count: 256)
  private var lineMemo: [LineMemo] = []
  /// Cached code objects a walk used, to be checked in one batch at its end.
  package private(set) var pending: [(address: RemoteAddress, id: CodeID)] = []
  /// How long a cached code object is trusted before it is checked again: one freed and replaced
  /// at the same address is noticed within this time (it must be unreachable from every live
  /// frame first, which is rare outside exec/compile loops).
  package var revalidationNanoseconds: UInt64 = 100_000_000

  package init() {}

  /// What the cache knows of the code object at `address` at `now`.
  package enum Lookup {
    /// Known and recently checked.
    case fresh(CodeID)
    /// Known, but due to be checked against the target.
    case due(CodeID)
    case unknown
  }

  @inline(__always)
  package func lookup(_ address: RemoteAddress, now: UInt64) -> Lookup {
    let slot = Int(truncatingIfNeeded: address >> 4) & (recent.count - 1)
    let id: CodeID
    if recent[slot].address == address {
      id = recent[slot].id
    } else if let known = index[address] {
      recent[slot] = (address, known)
      id = known
    } else {
      return .unknown
    }
    return now &- checkedAt[Int(id)] < revalidationNanoseconds ? .fresh(id) : .due(id)
  }

  /// Adds a code object read at `address`; its new id.
  package func insert(_ info: CodeInfo, at address: RemoteAddress, now: UInt64) -> CodeID {
    let id = CodeID(codes.count)
    codes.append(info)
    checkedAt.append(now)
    addresses.append(address)
    lineMemo.append(contentsOf: repeatElement(LineMemo(), count: LineMemo.slots))
    index[address] = id
    recent[Int(truncatingIfNeeded: address >> 4) & (recent.count - 1)] = (address, id)
    return id
  }

  /// Whether `identity` (the filename and name pointers read now) is still code object `id`'s;
  /// if so it counts as checked at `now`, if not its address is forgotten.
  package func confirm(_ id: CodeID, identity: (UInt64, UInt64), now: UInt64) -> Bool {
    if codes[Int(id)].identity == identity {
      checkedAt[Int(id)] = now
      return true
    }
    forget(addresses[Int(id)])
    return false
  }

  /// Queues a cached code object for the batch check at the end of a walk.
  package func queueCheck(_ address: RemoteAddress, _ id: CodeID) { pending.append((address, id)) }

  /// Empties the queue of code objects to check.
  package func clearPending() { pending.removeAll(keepingCapacity: true) }

  /// Drops the code object at `address`: it will be read afresh, under a new id.
  package func forget(_ address: RemoteAddress) {
    index[address] = nil
    let slot = Int(truncatingIfNeeded: address >> 4) & (recent.count - 1)
    if recent[slot].address == address { recent[slot] = (0, 0) }
  }

  /// Forgets every code object (ids already handed out stay valid for `code(_:)`).
  package func removeAll() {
    index.removeAll(keepingCapacity: true)
    recent = Array(repeating: (0, 0), count: recent.count)
  }

  @inline(__always)
  package func code(_ id: CodeID) -> CodeInfo { codes[Int(id)] }

  /// `_co_firsttraceable` of code object `id` (without copying its names).
  @inline(__always)
  package func firstTraceable(of id: CodeID) -> Int { codes[Int(id)].firstTraceable }

  /// The first line of code object `id` (without copying its names).
  @inline(__always)
  package func firstLine(of id: CodeID) -> Int { codes[Int(id)].firstLine }

  package func address(of id: CodeID) -> RemoteAddress { addresses[Int(id)] }

  /// The line of instruction offset `lasti` (bytes) in code object `id`: remembered for the last
  /// few offsets of each code object (a hot loop visits a handful), else decoded.
  package func line(of id: CodeID, at lasti: Int, format: LineTableFormat) -> Int32 {
    let slot = Int(id) &* LineMemo.slots &+ ((lasti >> 1) & (LineMemo.slots - 1))
    let key = Int32(truncatingIfNeeded: lasti)
    if slot < lineMemo.count, lineMemo[slot].lasti == key { return lineMemo[slot].line }
    let line = Int32(
      truncatingIfNeeded: LineTable.line(
        for: lasti, firstLine: codes[Int(id)].firstLine, table: codes[Int(id)].lineTable, format: format))
    if slot < lineMemo.count { lineMemo[slot] = LineMemo(lasti: key, line: line) }
    return line
  }
}
