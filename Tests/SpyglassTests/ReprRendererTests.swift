//===--- ReprRendererTests.swift - reprs of objects made by hand ------------===//
//
// The locals' repr renderer over a heap of objects built byte by byte with 3.12's generated
// layout (type objects with their names and flags, ints, strings, lists, tuples, floats, None):
// exact reprs, the character budget, the depth limit, self-containing containers, garbage
// pointers. The end-to-end suites (LocalsTests, the fuzzer) read real interpreters.
//
//===----------------------------------------------------------------------===//

import SpyglassLayouts
import SpyglassProcess
import Testing

@testable import SpyglassStacks

/// Python objects laid out in a snapshot as 3.12 lays them out.
struct ObjectHeap {
  let model = PythonTraits(major: 3, minor: 12)!
  var layout: PythonLayout { model.layout }
  var memory = SnapshotMemory()
  private var next: RemoteAddress = 0x10_0000
  private var types: [String: RemoteAddress] = [:]

  /// Objects are padded: the readers read whole headers (and names 128 bytes at a time), as a
  /// live process's memory lets them.
  private static let padding = 256

  private mutating func allocate(_ size: Int) -> RemoteAddress {
    let address = next
    next += UInt64((size + Self.padding + 63) & ~15)
    return address
  }

  private mutating func put(
    _ address: RemoteAddress, _ words: [(Int?, UInt64)], size: Int, tail: (offset: Int, bytes: [UInt8])? = nil
  ) {
    var bytes = [UInt8](repeating: 0, count: size + Self.padding)
    if let tail { bytes.replaceSubrange(tail.offset..<(tail.offset + tail.bytes.count), with: tail.bytes) }
    for (offset, value) in words {
      guard let offset else { continue }
      for i in 0..<8 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }
    memory.add(.init(start: address, bytes: bytes))
  }

  /// A type object named `name` with `flags` (made once per name).
  mutating func type(_ name: String, flags: UInt64 = 0) -> RemoteAddress {
    if let known = types[name] { return known }
    let nameAddress = allocate(name.utf8.count + 1)
    put(nameAddress, [], size: name.utf8.count + 1, tail: (0, Array(name.utf8)))
    let size = (layout.typeFlags ?? 0) + 64
    let address = allocate(size)
    put(address, [(layout.typeName, nameAddress), (layout.typeFlags, flags)], size: size)
    types[name] = address
    return address
  }

  mutating func int(_ value: Int) -> RemoteAddress {
    let type = type("int", flags: model.typeFlags.longSubclass)
    let magnitude = UInt64(value.magnitude)
    var digits: [UInt64] = []
    var rest = magnitude
    while rest > 0 {
      digits.append(rest & 0x3fff_ffff)
      rest >>= 30
    }
    let sign: UInt64 = value < 0 ? 2 : value == 0 ? 1 : 0
    let size = (layout.longDigits ?? 24) + 4 * Swift.max(1, digits.count) + 8
    let address = allocate(size)
    var words: [(Int?, UInt64)] = [(layout.objectType, type), (layout.longTag, UInt64(digits.count) << 3 | sign)]
    // Two 30-bit digits per word (digits are 4 bytes each).
    for index in stride(from: 0, to: digits.count, by: 2) {
      let pair = digits[index] | (index + 1 < digits.count ? digits[index + 1] << 32 : 0)
      words.append(((layout.longDigits ?? 0) + index * 4, pair))
    }
    put(address, words, size: size)
    return address
  }

  mutating func string(_ text: String) -> RemoteAddress {
    let type = type("str", flags: model.typeFlags.unicodeSubclass)
    let bits = model.unicodeState!
    let header = layout.asciiObjectSize ?? 40
    let bytes = Array(text.utf8)
    let address = allocate(header + bytes.count + 1)
    let state = UInt64(1 << bits.kindShift | 1 << bits.compactShift | 1 << bits.asciiShift)
    put(
      address, [(layout.objectType, type), (layout.unicodeLength, UInt64(bytes.count)), (layout.unicodeState, state)],
      size: header + bytes.count + 1, tail: (header, bytes))
    return address
  }

  mutating func float(_ value: Double) -> RemoteAddress {
    let address = allocate(32)
    put(address, [(layout.objectType, type("float")), (layout.floatValue, value.bitPattern)], size: 32)
    return address
  }

  mutating func none() -> RemoteAddress {
    let address = allocate(16)
    put(address, [(layout.objectType, type("NoneType"))], size: 16)
    return address
  }

  mutating func tuple(_ items: [RemoteAddress]) -> RemoteAddress {
    let itemsOffset = layout.tupleItems ?? 24
    let address = allocate(itemsOffset + 8 * items.count)
    var words: [(Int?, UInt64)] = [
      (layout.objectType, type("tuple", flags: model.typeFlags.tupleSubclass)),
      (layout.varObjectSize, UInt64(items.count)),
    ]
    for (index, item) in items.enumerated() { words.append((itemsOffset + 8 * index, item)) }
    put(address, words, size: itemsOffset + 8 * items.count)
    return address
  }

  /// A list (its items array apart, as CPython keeps it); `items` may be filled in later.
  mutating func list(_ items: [RemoteAddress], count: Int? = nil) -> (list: RemoteAddress, items: RemoteAddress) {
    let array = allocate(8 * Swift.max(1, items.count))
    put(array, items.enumerated().map { (8 * $0.offset, $0.element) }, size: 8 * Swift.max(1, items.count))
    let address = allocate(48)
    put(
      address,
      [
        (layout.objectType, type("list", flags: model.typeFlags.listSubclass)),
        (layout.varObjectSize, UInt64(count ?? items.count)), (layout.listItems, array),
      ], size: 48)
    return (address, array)
  }

  /// Points item `index` of a list's array at `object` (for a list that contains itself).
  mutating func setItem(_ array: RemoteAddress, _ index: Int, _ object: RemoteAddress) {
    guard let region = memory.regions.firstIndex(where: { $0.start == array }) else { return }
    for i in 0..<8 {
      memory.regions[region].bytes[8 * index + i] = UInt8(truncatingIfNeeded: object >> (8 * UInt64(i)))
    }
  }

  func repr(_ object: RemoteAddress, budget: Int = 128) -> String? {
    var renderer = ReprRenderer(objects: ObjectReader(memory: memory, layout: layout, model: model))
    return renderer.repr(object, budget: budget)
  }
}

@Suite struct ReprRendererTests {
  @Test func scalarsAndContainers() {
    var heap = ObjectHeap()
    // (Each object is made before the heap is read: `heap.repr(heap.int(1))` would read the heap
    // as it was before the int.)
    let values: [(RemoteAddress, String)] = [
      (heap.int(0), "0"), (heap.int(42), "42"), (heap.int(-7), "-7"), (heap.int(1 << 40), "1099511627776"),
      (heap.string("hi"), "\"hi\""), (heap.float(1.5), "1.5"), (heap.none(), "None"),
    ]
    for (object, expected) in values { #expect(heap.repr(object) == expected) }
    let pair = heap.tuple([heap.int(1), heap.string("a")])
    let single = heap.tuple([heap.int(1)])
    let list = heap.list([heap.int(3), pair, heap.none()]).list
    #expect(heap.repr(pair) == "(1, \"a\")")
    #expect(heap.repr(single) == "(1,)")
    #expect(heap.repr(list) == "[3, (1, \"a\"), None]")
  }

  @Test func theBudgetCutsAndSaysSo() {
    var heap = ObjectHeap()
    let long = heap.string(String(repeating: "x", count: 500))
    let shown = heap.repr(long, budget: 20) ?? ""
    #expect(shown == "\"" + String(repeating: "x", count: 15) + "...\"", "cut inside its quotes: \(shown)")
    let many = heap.list((0..<200).map { heap.int($0) }).list
    let cut = heap.repr(many, budget: 40) ?? ""
    #expect(cut.count <= 40 && cut.hasPrefix("[0, 1, 2") && cut.contains("..."), "\(cut)")
    #expect(heap.repr(many, budget: 5) == "...")
  }

  @Test func selfContainingContainersAndDepthEnd() {
    var heap = ObjectHeap()
    let (list, items) = heap.list([0])
    heap.setItem(items, 0, list)
    let shown = heap.repr(list, budget: 4096)
    #expect(shown != nil && shown!.count < 4096, "\(shown ?? "nil")")
    var nested = heap.int(1)
    for _ in 0..<50 { nested = heap.tuple([nested]) }
    #expect((heap.repr(nested, budget: 4096) ?? "").count < 200)
  }

  @Test func garbageIsNeverTrusted() {
    var heap = ObjectHeap()
    #expect(heap.repr(0xdead_beef) == nil, "an unmapped object")
    // A list claiming 2^40 items, and one whose items point nowhere.
    let huge = heap.list([heap.int(1)], count: 1 << 40).list
    #expect(heap.repr(huge) == nil)
    // An item that cannot be read: the list's repr cannot be read either (never half a list).
    let dangling = heap.list([0x4242_4242, heap.int(2)]).list
    #expect(heap.repr(dangling) == nil)
  }
}
