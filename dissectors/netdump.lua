-- FreeBSD netdump(4) / debugnet dissector for Wireshark 4.0 and newer.
--
-- Protocol name "fbsd_netdump": Wireshark's built-in "netdump" decodes the unrelated
-- Red Hat/Linux netdump protocol.
--
-- Wire format (all big-endian): client messages are a 24-byte header
--   type u32, seqno u32, offset u64, len u32, aux2 u32
-- followed by len payload bytes; the server answers each message with a 4-byte ACK
-- holding the seqno.  Every client packet leaves from UDP port 20024, the HERALD goes
-- to port 20023, the rest to the server's ephemeral data port, and every ACK goes to
-- client port 20024.
--
-- Sequence analysis keeps its state in module tables keyed by the client's IPv4
-- address and by frame number.  State is written only on the first pass
-- (not pinfo.visited) and cleared in init().  Forward links ("Acked in frame N") and
-- the "unacknowledged" check need a second pass: use tshark -2.
--
-- Written for Lua 5.2 (Wireshark 4.0) and Lua 5.4 (Wireshark 4.4+): no native bit
-- operators, no integer division operator.

local DEFAULT_HERALD_PORT = 20023
local DEFAULT_CLIENT_PORT = 20024
local HDR_LEN = 24
local KDH_LEN = 512
local DATASIZE = 4096
local BYTES_WINDOW = 1024 -- how many recent seqnos keep their bytes for the conflict check

local p = Proto("fbsd_netdump", "FreeBSD netdump")

----------------------------------------------------------------------------------------
-- Value strings
----------------------------------------------------------------------------------------
local TYPE_NAMES = { [1] = "HERALD", [2] = "FINISHED", [3] = "VMCORE", [4] = "KDH", [5] = "EKCD_KEY" }
local COMPRESSION_NAMES = { [0] = "none", [1] = "gzip", [2] = "zstd" }
local ENCRYPTION_NAMES = { [1] = "AES-256-CBC", [2] = "ChaCha20" }

----------------------------------------------------------------------------------------
-- Fields
----------------------------------------------------------------------------------------
local F = {
    -- header
    type = ProtoField.uint32("fbsd_netdump.type", "Type", base.DEC, TYPE_NAMES),
    seqno = ProtoField.uint32("fbsd_netdump.seqno", "Sequence number", base.DEC),
    offset = ProtoField.uint64("fbsd_netdump.offset", "Offset", base.DEC),
    length = ProtoField.uint32("fbsd_netdump.length", "Payload length", base.DEC),
    aux2 = ProtoField.uint32("fbsd_netdump.aux2", "Aux2", base.HEX),
    payload = ProtoField.bytes("fbsd_netdump.payload", "Payload"),
    -- ACK
    ack_seqno = ProtoField.uint32("fbsd_netdump.ack.seqno", "Acknowledged sequence number", base.DEC),
    -- HERALD
    path = ProtoField.string("fbsd_netdump.herald.path", "Dump path"),
    -- KDH
    kdh = ProtoField.none("fbsd_netdump.kdh", "Kernel dump header"),
    kdh_magic = ProtoField.string("fbsd_netdump.kdh.magic", "Magic"),
    kdh_arch = ProtoField.string("fbsd_netdump.kdh.architecture", "Architecture"),
    kdh_version = ProtoField.uint32("fbsd_netdump.kdh.version", "Version", base.DEC),
    kdh_archver = ProtoField.uint32("fbsd_netdump.kdh.architectureversion", "Architecture version", base.DEC),
    kdh_dumplength = ProtoField.uint64("fbsd_netdump.kdh.dumplength", "Dump length", base.DEC),
    kdh_dumptime = ProtoField.absolute_time("fbsd_netdump.kdh.dumptime", "Dump time", base.UTC),
    kdh_dumpkeysize = ProtoField.uint32("fbsd_netdump.kdh.dumpkeysize", "Dump key size", base.DEC),
    kdh_blocksize = ProtoField.uint32("fbsd_netdump.kdh.blocksize", "Block size", base.DEC),
    kdh_hostname = ProtoField.string("fbsd_netdump.kdh.hostname", "Host name"),
    kdh_versionstring = ProtoField.string("fbsd_netdump.kdh.versionstring", "Version string"),
    kdh_panicstring = ProtoField.string("fbsd_netdump.kdh.panicstring", "Panic string"),
    kdh_compression = ProtoField.uint8("fbsd_netdump.kdh.compression", "Compression", base.DEC, COMPRESSION_NAMES),
    kdh_dumpextent = ProtoField.uint64("fbsd_netdump.kdh.dumpextent", "Dump extent", base.DEC),
    kdh_parity = ProtoField.uint32("fbsd_netdump.kdh.parity", "Parity", base.HEX),
    kdh_parity_xor = ProtoField.uint32("fbsd_netdump.kdh.parity_xor", "XOR of all 128 words", base.HEX),
    kdh_parity_ok = ProtoField.bool("fbsd_netdump.kdh.parity_ok", "Parity OK"),
    -- EKCD key
    ekcd_encryption = ProtoField.uint8("fbsd_netdump.ekcd.encryption", "Encryption", base.DEC, ENCRYPTION_NAMES),
    ekcd_iv = ProtoField.bytes("fbsd_netdump.ekcd.iv", "IV"),
    ekcd_keysize = ProtoField.uint32("fbsd_netdump.ekcd.encryptedkeysize", "Encrypted key size", base.DEC),
    ekcd_key = ProtoField.bytes("fbsd_netdump.ekcd.encryptedkey", "Encrypted key"),
    -- session
    session = ProtoField.uint32("fbsd_netdump.session", "Dump (session) number", base.DEC),
    client = ProtoField.ipv4("fbsd_netdump.client", "Client"),
    -- links and timing
    ack_frame = ProtoField.framenum("fbsd_netdump.ack_frame", "Acked in frame", base.NONE, frametype.ACK),
    ack_rtt = ProtoField.relative_time("fbsd_netdump.ack_rtt", "Time to ACK"),
    acked_frame = ProtoField.framenum("fbsd_netdump.acked_frame", "ACK of the message in frame", base.NONE, frametype.REQUEST),
    retransmission_of = ProtoField.framenum("fbsd_netdump.retransmission_of", "Retransmission of the original in frame", base.NONE, frametype.RETRANS_PREV),
    prev_transmission = ProtoField.framenum("fbsd_netdump.prev_transmission", "Previous transmission in frame", base.NONE, frametype.RETRANS_PREV),
    next_transmission = ProtoField.framenum("fbsd_netdump.next_transmission", "Retransmitted in frame", base.NONE, frametype.RETRANS_NEXT),
    dup_ack_of = ProtoField.framenum("fbsd_netdump.dup_ack_of", "Duplicate of the ACK in frame", base.NONE, frametype.DUP_ACK),
    dup_ack_num = ProtoField.uint32("fbsd_netdump.dup_ack_num", "Duplicate ACK number", base.DEC),
    capture_duplicate_of = ProtoField.framenum("fbsd_netdump.capture_duplicate_of", "Capture duplicate of frame", base.NONE, frametype.NONE),
    -- analysis flags (each also has an expert item)
    retransmission = ProtoField.bool("fbsd_netdump.retransmission", "Retransmission"),
    spurious = ProtoField.bool("fbsd_netdump.spurious_retransmission", "Spurious retransmission"),
    duplicate_ack = ProtoField.bool("fbsd_netdump.duplicate_ack", "Duplicate ACK"),
    ack_unseen = ProtoField.bool("fbsd_netdump.ack_unseen", "ACK for an unseen message"),
    unacked = ProtoField.bool("fbsd_netdump.unacked", "Never acknowledged"),
    conflict = ProtoField.bool("fbsd_netdump.conflict", "Conflicting retransmission"),
    seq_gap = ProtoField.bool("fbsd_netdump.seq_gap", "Sequence gap before this message"),
    seq_gap_missing = ProtoField.uint32("fbsd_netdump.seq_gap_missing", "Seqnos missing before this message", base.DEC),
    new_dump = ProtoField.bool("fbsd_netdump.new_dump", "HERALD after data: new dump"),
    capture_duplicate = ProtoField.bool("fbsd_netdump.capture_duplicate", "Capture duplicate"),
    runt = ProtoField.bool("fbsd_netdump.runt", "Runt"),
    bad_length = ProtoField.bool("fbsd_netdump.bad_length", "Length mismatch"),
    jumbo = ProtoField.bool("fbsd_netdump.jumbo", "Payload above 4096 bytes"),
    bad_parity = ProtoField.bool("fbsd_netdump.kdh.bad_parity", "Bad KDH parity"),
    unsafe_path = ProtoField.bool("fbsd_netdump.herald.unsafe_path", "Unsafe HERALD path"),
}

local field_list = {}
for _, f in pairs(F) do field_list[#field_list + 1] = f end
p.fields = field_list

----------------------------------------------------------------------------------------
-- Expert items
----------------------------------------------------------------------------------------
local SEQ, MALF = expert.group.SEQUENCE, expert.group.MALFORMED
local S = expert.severity
local E = {
    retransmission = ProtoExpert.new("fbsd_netdump.expert.retransmission", "Retransmission", SEQ, S.NOTE),
    spurious = ProtoExpert.new("fbsd_netdump.expert.spurious_retransmission", "Spurious retransmission (already acknowledged)", SEQ, S.NOTE),
    duplicate_ack = ProtoExpert.new("fbsd_netdump.expert.duplicate_ack", "Duplicate ACK", SEQ, S.NOTE),
    ack_unseen = ProtoExpert.new("fbsd_netdump.expert.ack_unseen", "ACK for a message not captured", SEQ, S.WARN),
    unacked = ProtoExpert.new("fbsd_netdump.expert.unacked", "Message never acknowledged in this capture", SEQ, S.WARN),
    conflict = ProtoExpert.new("fbsd_netdump.expert.conflict", "Retransmission differs from the previous copy", SEQ, S.WARN),
    seq_gap = ProtoExpert.new("fbsd_netdump.expert.seq_gap", "Sequence gap: earlier messages not captured", SEQ, S.WARN),
    new_dump = ProtoExpert.new("fbsd_netdump.expert.new_dump", "HERALD after data: a new dump starts", SEQ, S.NOTE),
    capture_duplicate = ProtoExpert.new("fbsd_netdump.expert.capture_duplicate", "Capture duplicate (same bytes, same timestamp), not a retransmission", SEQ, S.CHAT),
    runt = ProtoExpert.new("fbsd_netdump.expert.runt", "Runt: shorter than the 24-byte header", MALF, S.ERROR),
    bad_length = ProtoExpert.new("fbsd_netdump.expert.bad_length", "Length mismatch: 24 + mh_len differs from the UDP payload length", MALF, S.ERROR),
    bad_ack = ProtoExpert.new("fbsd_netdump.expert.bad_ack", "Datagram to the client port is not a 4-byte ACK", MALF, S.WARN),
    unknown_type = ProtoExpert.new("fbsd_netdump.expert.unknown_type", "Unknown message type", expert.group.PROTOCOL, S.WARN),
    jumbo = ProtoExpert.new("fbsd_netdump.expert.jumbo", "Payload above 4096 bytes: netdumpd will not accept it", expert.group.PROTOCOL, S.WARN),
    bad_parity = ProtoExpert.new("fbsd_netdump.expert.bad_parity", "Kernel dump header parity check failed", expert.group.CHECKSUM, S.WARN),
    unsafe_path = ProtoExpert.new("fbsd_netdump.expert.unsafe_path", "HERALD path is absolute or contains ..", expert.group.SECURITY, S.WARN),
}
local expert_list = {}
for _, e in pairs(E) do expert_list[#expert_list + 1] = e end
p.experts = expert_list

----------------------------------------------------------------------------------------
-- Preferences
----------------------------------------------------------------------------------------
p.prefs.herald_port = Pref.uint("HERALD (server) port", DEFAULT_HERALD_PORT, "UDP port the HERALD is sent to")
p.prefs.client_port = Pref.uint("Client port", DEFAULT_CLIENT_PORT, "UDP port every client packet leaves from and every ACK goes to")
p.prefs.max_payload = Pref.uint("Largest accepted payload", DATASIZE, "Payloads above this size get a warning (netdumpd accepts 4096)")

-- preference values cached in locals (read on every packet)
local herald_port, client_port, max_payload = DEFAULT_HERALD_PORT, DEFAULT_CLIENT_PORT, DATASIZE

local udp_table = DissectorTable.get("udp.port")
local registered = {}

local function register_ports()
    for port in pairs(registered) do udp_table:remove(port, p) end
    registered = {}
    herald_port, client_port, max_payload = p.prefs.herald_port, p.prefs.client_port, p.prefs.max_payload
    for _, port in ipairs({ herald_port, client_port }) do
        if port and port > 0 and not registered[port] then
            udp_table:add(port, p)
            registered[port] = true
        end
    end
end

function p.prefs_changed()
    register_ports()
end

----------------------------------------------------------------------------------------
-- Helpers
----------------------------------------------------------------------------------------
-- XOR: the BitOp "bit" module Wireshark ships (4.0 and, for compatibility, 4.4+), else
-- Lua 5.4's native operator, compiled at run time so that Lua 5.2 never parses it.
local bxor = (bit and bit.bxor) or (bit32 and bit32.bxor)
if bxor == nil then
    local chunk = load("return function(a, b) return a ~ b end")
    bxor = chunk and chunk()
end

-- Frame times.  Field values such as frame.time_epoch are not filled in on a first pass
-- without a tree, and pinfo.abs_ts is a double too coarse for nanoseconds.  So time
-- differences use pinfo.rel_ts (small numbers, exact enough), and capture duplicates
-- compare pinfo.abs_ts exactly (the same timestamp gives the same double).
local function frame_time(pinfo)
    return pinfo.rel_ts, pinfo.abs_ts
end

local function time_diff(t1, t2)
    -- t2 - t1 (seconds as doubles) as an NSTime rounded to the nanosecond
    local ns = math.floor((t2 - t1) * 1e9 + 0.5)
    local secs = math.floor(ns / 1e9)
    return NSTime.new(secs, ns - secs * 1000000000)
end

local function unsafe_path(path)
    if path:sub(1, 1) == "/" then return true end
    for comp in path:gmatch("[^/]+") do
        if comp == ".." then return true end
    end
    return false
end

----------------------------------------------------------------------------------------
-- State (first pass), reset in init()
----------------------------------------------------------------------------------------
local sessions      -- list of sessions in order of first appearance
local current       -- client address string -> current session
local frames        -- frame number -> per-frame analysis record

local function reset_state()
    sessions = {}
    current = {}
    frames = {}
end
reset_state()

function p.init()
    reset_state()
end

local function new_session(client, t)
    local sess = {
        id = #sessions + 1,
        client = client,
        herald_path = nil,
        herald_seen = false,
        data_seen = false,
        first_t = t, last_t = t,
        counts = { [1] = 0, [2] = 0, [3] = 0, [4] = 0, [5] = 0 },
        acks = 0, retrans = 0, dup_acks = 0, data_bytes = 0, capture_dups = 0,
        max_seq = nil,
        tx = {},       -- seqno -> list of transmission records
        bytes = {},    -- seqno -> raw bytes of the last copy (recent seqnos only)
        acked = {},    -- seqno -> first ACK record
        last_ack = {}, -- seqno -> last ACK record (for capture duplicates)
    }
    sessions[#sessions + 1] = sess
    current[client] = sess
    return sess
end

local function touch(sess, t)
    if t > sess.last_t then sess.last_t = t end
end

-- First-pass analysis of a well-formed client message.
local function analyse_message(pinfo, client, mtype, seqno, raw, rec)
    local t, abs = frame_time(pinfo)
    local sess = current[client]
    if mtype == 1 then
        if sess == nil then
            sess = new_session(client, t)
        elseif sess.data_seen then
            local prev = sess
            sess = new_session(client, t)
            rec.new_dump = true
            rec.prev_session = prev.id
        end
        if not sess.herald_seen then
            sess.herald_seen = true
            sess.herald_path = rec.path
        end
    else
        if sess == nil then
            sess = new_session(client, t)
        end
        sess.data_seen = true
    end
    rec.session = sess
    rec.t, rec.abs = t, abs
    touch(sess, t)

    local copies = sess.tx[seqno]
    if copies then
        local last = copies[#copies]
        local last_raw = sess.bytes[seqno]
        if last_raw ~= nil and last_raw == raw and last.abs == abs then
            rec.capture_dup_of = last.frame
            sess.capture_dups = sess.capture_dups + 1
            return
        end
        rec.retrans_of = copies[1].frame
        rec.prev_tx = last.frame
        if last.next_tx == nil then last.next_tx = pinfo.number end
        if last_raw ~= nil and last_raw ~= raw then rec.conflict = true end
        if sess.acked[seqno] then rec.spurious = true end
        copies[#copies + 1] = rec
        sess.retrans = sess.retrans + 1
    else
        sess.tx[seqno] = { rec }
        if sess.max_seq ~= nil and seqno > sess.max_seq + 1 then
            rec.gap = seqno - sess.max_seq - 1
        end
        if sess.max_seq == nil or seqno > sess.max_seq then
            sess.max_seq = seqno
            local old = seqno - BYTES_WINDOW
            if old >= 0 then sess.bytes[old] = nil end
        end
        if mtype == 3 then sess.data_bytes = sess.data_bytes + #raw - HDR_LEN end
    end
    sess.bytes[seqno] = raw
    sess.counts[mtype] = sess.counts[mtype] + 1
    rec.counted = true
end

-- First-pass analysis of an ACK.
local function analyse_ack(pinfo, client, seqno, rec)
    local t, abs = frame_time(pinfo)
    local sess = current[client]
    rec.t, rec.abs = t, abs
    if sess == nil then
        rec.unseen = true
        return
    end
    rec.session = sess
    touch(sess, t)
    local last_ack = sess.last_ack[seqno]
    if last_ack and last_ack.abs == abs then
        rec.capture_dup_of = last_ack.frame
        sess.capture_dups = sess.capture_dups + 1
        return
    end
    sess.last_ack[seqno] = rec
    sess.acks = sess.acks + 1
    local copies = sess.tx[seqno]
    if copies == nil then
        rec.unseen = true
    else
        local m = copies[#copies]
        rec.acked_frame = m.frame
        rec.rtt = time_diff(m.t, t)
        for i = #copies, 1, -1 do
            local c = copies[i]
            if c.ack_frame ~= nil then break end
            c.ack_frame = pinfo.number
            c.rtt = time_diff(c.t, t)
        end
    end
    local first = sess.acked[seqno]
    if first then
        rec.dup_of = first.frame
        first.dups = (first.dups or 0) + 1
        rec.dup_num = first.dups
        sess.dup_acks = sess.dup_acks + 1
    else
        sess.acked[seqno] = rec
    end
end

----------------------------------------------------------------------------------------
-- Tree helpers
----------------------------------------------------------------------------------------
local function add_gen(tree, field, value)
    local item = tree:add(field, value)
    item:set_generated()
    return item
end

local function add_flag(tree, field, ex, text)
    local item = add_gen(tree, field, true)
    if text then item:add_proto_expert_info(ex, text) else item:add_proto_expert_info(ex) end
    return item
end

-- kerneldumpheader layouts, version -> list of {field, offset, size, kind}
local KDH_COMMON = {
    { F.kdh_magic, 0, 20, "str" }, { F.kdh_arch, 20, 12, "str" }, { F.kdh_version, 32, 4, "u32" },
    { F.kdh_archver, 36, 4, "u32" }, { F.kdh_dumplength, 40, 8, "u64" },
}
local KDH_LAYOUTS = {
    [1] = { { F.kdh_dumptime, 48, 8, "time" }, { F.kdh_blocksize, 56, 4, "u32" }, { F.kdh_hostname, 60, 64, "str" },
            { F.kdh_versionstring, 124, 192, "str" }, { F.kdh_panicstring, 316, 192, "str" } },
    [2] = { { F.kdh_dumptime, 48, 8, "time" }, { F.kdh_dumpkeysize, 56, 4, "u32" }, { F.kdh_blocksize, 60, 4, "u32" },
            { F.kdh_hostname, 64, 64, "str" }, { F.kdh_versionstring, 128, 192, "str" }, { F.kdh_panicstring, 320, 188, "str" } },
    [3] = { { F.kdh_dumpextent, 48, 8, "u64" }, { F.kdh_dumptime, 56, 8, "time" }, { F.kdh_dumpkeysize, 64, 4, "u32" },
            { F.kdh_blocksize, 68, 4, "u32" }, { F.kdh_compression, 72, 1, "u8" }, { F.kdh_hostname, 73, 64, "str" },
            { F.kdh_versionstring, 137, 192, "str" }, { F.kdh_panicstring, 329, 179, "str" } },
    [4] = { { F.kdh_dumptime, 48, 8, "time" }, { F.kdh_dumpkeysize, 56, 4, "u32" }, { F.kdh_blocksize, 60, 4, "u32" },
            { F.kdh_hostname, 64, 64, "str" }, { F.kdh_versionstring, 128, 192, "str" }, { F.kdh_panicstring, 320, 175, "str" },
            { F.kdh_compression, 495, 1, "u8" }, { F.kdh_dumpextent, 496, 8, "u64" } },
}

-- Returns the host name for the Info column.
local function dissect_kdh(tvbr, tree)
    local sub = tree:add(F.kdh, tvbr)
    local version = tvbr(32, 4):uint()
    local layout = KDH_LAYOUTS[version] or KDH_LAYOUTS[4]
    local host
    local function add_one(d)
        local f, off, size, kind = d[1], d[2], d[3], d[4]
        local r = tvbr(off, size)
        if kind == "str" then
            local text = r:stringz()
            sub:add(f, r, text)
            if f == F.kdh_hostname then host = text end
        elseif kind == "time" then
            sub:add(f, r, NSTime.new(r:uint64():tonumber(), 0))
        else
            sub:add(f, r)
        end
    end
    for _, d in ipairs(KDH_COMMON) do add_one(d) end
    for _, d in ipairs(layout) do add_one(d) end
    local acc = 0
    for i = 0, 127 do acc = bxor(acc, tvbr(i * 4, 4):uint()) end
    acc = acc % 4294967296
    local pitem = sub:add(F.kdh_parity, tvbr(508, 4))
    add_gen(sub, F.kdh_parity_xor, acc)
    add_gen(sub, F.kdh_parity_ok, acc == 0)
    if acc ~= 0 then
        add_gen(sub, F.bad_parity, true)
        pitem:add_proto_expert_info(E.bad_parity, string.format("Kernel dump header parity check failed (XOR of the 128 words is 0x%08x)", acc))
    end
    sub:append_text(string.format(": version %d, host %s", version, host or "?"))
    return host
end

local function dissect_ekcd(tvbr, tree)
    local avail = tvbr:len()
    if avail < 37 then return end
    tree:add(F.ekcd_encryption, tvbr(0, 1))
    tree:add(F.ekcd_iv, tvbr(1, 32))
    tree:add(F.ekcd_keysize, tvbr(33, 4))
    local ks = tvbr(33, 4):uint()
    local n = math.min(ks, avail - 37)
    if n > 0 then tree:add(F.ekcd_key, tvbr(37, n)) end
end

local function add_session(tree, rec)
    local sess = rec.session
    if sess then
        add_gen(tree, F.session, sess.id)
    end
end

----------------------------------------------------------------------------------------
-- Dissection
--
-- The first pass of "tshark -2" (and of Wireshark when nothing needs a tree) passes a
-- NULL tree: then only the analysis and the columns are done, which roughly halves the
-- cost of that pass.
----------------------------------------------------------------------------------------
local function has_tree(tree)
    return tree.text ~= nil or tree.visible
end

local function u64_number(tvbr)
    return tvbr(0, 4):uint() * 4294967296 + tvbr(4, 4):uint()
end

local function ack_tree(tree, tvb, pinfo, seqno, rec)
    local t = tree:add(p, tvb(), string.format("FreeBSD netdump ACK, seq %d", seqno))
    t:add(F.ack_seqno, tvb(0, 4))
    add_gen(t, F.client, pinfo.dst)
    if rec == nil then return end
    add_session(t, rec)
    if rec.capture_dup_of then
        add_gen(t, F.capture_duplicate_of, rec.capture_dup_of)
        add_flag(t, F.capture_duplicate, E.capture_duplicate)
        return
    end
    if rec.acked_frame then
        add_gen(t, F.acked_frame, rec.acked_frame)
        add_gen(t, F.ack_rtt, rec.rtt)
    end
    if rec.unseen then add_flag(t, F.ack_unseen, E.ack_unseen) end
    if rec.dup_of then
        add_gen(t, F.dup_ack_of, rec.dup_of)
        add_gen(t, F.dup_ack_num, rec.dup_num)
        add_flag(t, F.duplicate_ack, E.duplicate_ack,
            string.format("Duplicate ACK #%d of frame %d", rec.dup_num, rec.dup_of))
    end
end

local function dissect_ack(tvb, pinfo, tree, embedded)
    pinfo.cols.protocol = "FBSD-NETDUMP"
    local seqno = tvb(0, 4):uint()
    local info = string.format("ACK seq=%d", seqno)
    local rec
    if not embedded then
        rec = frames[pinfo.number]
        if rec == nil and not pinfo.visited then
            rec = { frame = pinfo.number, ack = true }
            frames[pinfo.number] = rec
            analyse_ack(pinfo, tostring(pinfo.dst), seqno, rec)
        end
    end
    if rec then
        if rec.capture_dup_of then
            info = info .. " [capture duplicate]"
        else
            if rec.unseen then info = info .. " [ACK for unseen message]" end
            if rec.dup_of then info = info .. string.format(" [dup ACK #%d]", rec.dup_num) end
        end
    end
    pinfo.cols.info = info
    -- With no tree, expert items still reach the expert tap (tshark -z expert): build the
    -- (cheap, NULL) tree only for packets that carry one.
    if has_tree(tree) or (rec and (rec.capture_dup_of or rec.unseen or rec.dup_of)) then
        ack_tree(tree, tvb, pinfo, seqno, rec)
    end
end

local function runt(tvb, pinfo, tree, replen)
    pinfo.cols.protocol = "FBSD-NETDUMP"
    pinfo.cols.info = string.format("Runt message (%d bytes)", replen)
    local t = tree:add(p, tvb())
    add_gen(t, F.client, pinfo.src)
    t:append_text(string.format(", runt (%d bytes)", replen))
    add_flag(t, F.runt, E.runt, string.format("Runt: %d bytes, shorter than the 24-byte header", replen))
    if tvb:len() > 0 then t:add(F.payload, tvb()) end
end

-- The tree of a message; returns the KDH host name when there is one.
local function message_tree(tree, tvb, pinfo, m, rec)
    local t = tree:add(p, tvb())
    local mtype, seqno, mlen = m.mtype, m.seqno, m.mlen
    add_gen(t, F.client, pinfo.src)
    t:append_text(string.format(", %s, seq %d", TYPE_NAMES[mtype] or ("type " .. mtype), seqno))
    local titem = t:add(F.type, tvb(0, 4))
    t:add(F.seqno, tvb(4, 4))
    t:add(F.offset, tvb(8, 8))
    local litem = t:add(F.length, tvb(16, 4))
    t:add(F.aux2, tvb(20, 4))
    if HDR_LEN + mlen ~= m.replen then
        add_flag(litem, F.bad_length, E.bad_length,
            string.format("Length mismatch: 24 + mh_len = %d, UDP payload is %d bytes", HDR_LEN + mlen, m.replen))
    end
    if TYPE_NAMES[mtype] == nil then
        titem:add_proto_expert_info(E.unknown_type, string.format("Unknown message type %d", mtype))
    end
    local avail = m.caplen - HDR_LEN
    local prange
    if avail > 0 then
        prange = tvb(HDR_LEN, avail)
        t:add(F.payload, prange)
    end
    if mlen > max_payload then
        add_flag(litem, F.jumbo, E.jumbo,
            string.format("Payload of %d bytes is above %d: netdumpd will not accept it", mlen, max_payload))
    end
    local host
    if mtype == 1 then
        t:add(F.path, prange or tvb(HDR_LEN, 0), m.path)
        if m.path ~= "" and unsafe_path(m.path) then add_flag(t, F.unsafe_path, E.unsafe_path) end
    elseif mtype == 4 and avail >= KDH_LEN and m.offset == 0 then
        host = dissect_kdh(tvb(HDR_LEN, KDH_LEN), t)
    elseif mtype == 5 and prange and m.offset == 0 then
        dissect_ekcd(prange, t)
    end
    if rec == nil then return host end

    add_session(t, rec)
    if rec.new_dump then
        add_flag(t, F.new_dump, E.new_dump,
            string.format("HERALD after data: dump %d starts, dump %d ends", rec.session.id, rec.prev_session))
    end
    if rec.capture_dup_of then
        add_gen(t, F.capture_duplicate_of, rec.capture_dup_of)
        add_flag(t, F.capture_duplicate, E.capture_duplicate)
        return host
    end
    if rec.gap then
        add_gen(t, F.seq_gap_missing, rec.gap)
        add_flag(t, F.seq_gap, E.seq_gap,
            string.format("Sequence gap: %d seqno(s) before %d not captured", rec.gap, seqno))
    end
    if rec.retrans_of then
        add_gen(t, F.retransmission_of, rec.retrans_of)
        add_gen(t, F.prev_transmission, rec.prev_tx)
        add_flag(t, F.retransmission, E.retransmission)
        if rec.spurious then add_flag(t, F.spurious, E.spurious) end
        if rec.conflict then add_flag(t, F.conflict, E.conflict) end
    end
    if rec.next_tx then add_gen(t, F.next_transmission, rec.next_tx) end
    if rec.ack_frame then
        add_gen(t, F.ack_frame, rec.ack_frame)
        add_gen(t, F.ack_rtt, rec.rtt)
    elseif rec.unacked then
        add_flag(t, F.unacked, E.unacked)
    end
    return host
end

local function kdh_host(tvb)
    -- host name for the Info column without building a tree (v4 and v2 layout: offset 64)
    local version = tvb(HDR_LEN + 32, 4):uint()
    local off = 64
    if version == 1 then off = 60 elseif version == 3 then off = 73 end
    return tvb(HDR_LEN + off, 64):stringz()
end

local function dissect_message(tvb, pinfo, tree, embedded)
    local replen = tvb:reported_len()
    local caplen = tvb:len()
    if replen < HDR_LEN or caplen < HDR_LEN then
        runt(tvb, pinfo, tree, replen)
        return
    end
    pinfo.cols.protocol = "FBSD-NETDUMP"
    local m = {
        mtype = tvb(0, 4):uint(), seqno = tvb(4, 4):uint(), offset = u64_number(tvb(8, 8)),
        mlen = tvb(16, 4):uint(), replen = replen, caplen = caplen,
    }
    local mtype, seqno, mlen = m.mtype, m.seqno, m.mlen
    local wellformed = HDR_LEN + mlen == replen and TYPE_NAMES[mtype] ~= nil
    if mtype == 1 then
        m.path = caplen > HDR_LEN and tvb(HDR_LEN, caplen - HDR_LEN):stringz() or ""
    end

    local rec
    if wellformed and not embedded then
        rec = frames[pinfo.number]
        if rec == nil and not pinfo.visited then
            rec = { frame = pinfo.number, path = m.path }
            frames[pinfo.number] = rec
            analyse_message(pinfo, tostring(pinfo.src), mtype, seqno, tvb:raw(0, caplen), rec)
        end
        if rec then
            -- recomputed on every later pass: during a live capture the ACK may still come
            rec.unacked = pinfo.visited and rec.ack_frame == nil and rec.session ~= nil
                and rec.session.acked[seqno] == nil
        end
    end

    local host
    if has_tree(tree) or not wellformed or mlen > max_payload or mtype == 1 or mtype == 4
        or (rec and (rec.new_dump or rec.capture_dup_of or rec.gap or rec.retrans_of or rec.unacked)) then
        host = message_tree(tree, tvb, pinfo, m, rec)
    elseif mtype == 4 and caplen >= HDR_LEN + KDH_LEN then
        host = kdh_host(tvb)
    end

    local info
    if mtype == 1 then
        if m.path ~= "" then info = "HERALD path=" .. m.path else info = string.format("HERALD seq=%d (no path)", seqno) end
    elseif mtype == 2 then
        info = string.format("FINISHED seq=%d", seqno)
    elseif mtype == 3 then
        info = string.format("VMCORE seq=%d off=%.0f len=%d", seqno, m.offset, mlen)
    elseif mtype == 4 then
        info = string.format("KDH seq=%d host=%s", seqno, host or "?")
    elseif mtype == 5 then
        info = string.format("EKCD_KEY seq=%d off=%.0f len=%d", seqno, m.offset, mlen)
    else
        info = string.format("Type %d seq=%d off=%.0f len=%d", mtype, seqno, m.offset, mlen)
    end
    if not wellformed then info = info .. " [malformed]" end
    if rec then
        if rec.new_dump then info = info .. " [new dump]" end
        if rec.capture_dup_of then
            info = info .. " [capture duplicate]"
        else
            if rec.gap then info = info .. " [seq gap]" end
            if rec.retrans_of then
                if rec.spurious then
                    info = info .. " [spurious retransmission]"
                else
                    info = info .. " [retransmission]"
                end
                if rec.conflict then info = info .. " [conflict]" end
            end
            if rec.unacked then info = info .. " [unacked]" end
        end
    end
    pinfo.cols.info = info
end

local function is_embedded(pinfo)
    -- A netdump datagram quoted inside an ICMP error (e.g. port unreachable after
    -- FINISHED) has the frame number of the ICMP packet: display it, keep no state.
    return pinfo.in_error_pkt
end

function p.dissector(tvb, pinfo, tree)
    local len = tvb:reported_len()
    if len == 4 and pinfo.dst_port == client_port then
        dissect_ack(tvb, pinfo, tree, is_embedded(pinfo))
        return len
    end
    if pinfo.src_port == client_port or pinfo.dst_port == herald_port then
        dissect_message(tvb, pinfo, tree, is_embedded(pinfo))
        return len
    end
    if pinfo.dst_port == client_port then
        pinfo.cols.protocol = "FBSD-NETDUMP"
        pinfo.cols.info = string.format("Not an ACK (%d bytes)", len)
        local t = tree:add(p, tvb(), "FreeBSD netdump, server datagram")
        add_gen(t, F.client, pinfo.dst)
        if tvb:len() > 0 then t:add(F.payload, tvb()) end
        t:add_proto_expert_info(E.bad_ack, string.format("Datagram to the client port has %d bytes, an ACK has 4", len))
        return len
    end
    return 0
end

-- Heuristic for unusual ports: a plausible message header, or a 4-byte ACK to the client port.
local function heuristic(tvb, pinfo, tree)
    local len = tvb:reported_len()
    if len == 4 and pinfo.dst_port == client_port then
        p.dissector(tvb, pinfo, tree)
        return true
    end
    if len < HDR_LEN or tvb:len() < HDR_LEN then return false end
    local mtype = tvb(0, 4):uint()
    if mtype < 1 or mtype > 5 then return false end
    if HDR_LEN + tvb(16, 4):uint() ~= len then return false end
    dissect_message(tvb, pinfo, tree, is_embedded(pinfo))
    return true
end

p:register_heuristic("udp", heuristic)
register_ports()

----------------------------------------------------------------------------------------
-- tshark -z fbsd_netdump,stats
----------------------------------------------------------------------------------------
local function session_duration(sess)
    return sess.last_t - sess.first_t
end

local function stats_table()
    local lines = {}
    local sep = string.rep("=", 132)
    lines[#lines + 1] = sep
    lines[#lines + 1] = "FreeBSD netdump (fbsd_netdump) dump summary"
    lines[#lines + 1] = sep
    lines[#lines + 1] = string.format("%-4s %-15s %-20s %6s %8s %8s %5s %8s %8s %7s %6s %12s %10s",
        "Dump", "Client", "HERALD path", "HERALD", "FINISHED", "VMCORE", "KDH", "EKCD_KEY", "ACK",
        "Retrans", "DupACK", "Data bytes", "Duration")
    for _, sess in ipairs(sessions) do
        local path = sess.herald_path
        if not sess.herald_seen then path = "(no HERALD)" elseif path == "" then path = "(default)" end
        lines[#lines + 1] = string.format("%-4d %-15s %-20s %6d %8d %8d %5d %8d %8d %7d %6d %12.0f %10.3f",
            sess.id, sess.client, path, sess.counts[1], sess.counts[2], sess.counts[3], sess.counts[4],
            sess.counts[5], sess.acks, sess.retrans, sess.dup_acks, sess.data_bytes, session_duration(sess))
    end
    lines[#lines + 1] = sep
    return table.concat(lines, "\n")
end

local function stats_init(arg)
    local tap = Listener.new("frame", "fbsd_netdump")
    function tap.draw()
        print(stats_table())
    end
    function tap.reset() end
    function tap.packet() end
end

register_stat_cmd_arg("fbsd_netdump,stats", stats_init)
