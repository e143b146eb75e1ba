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
-- This file is the entry point; the parts live in the fbsd_netdump/ folder beside it
-- (fields, the audit's classification, first-pass state, the analysis subtree, KDH
-- subtree, statistics, export and menus).  Sequence analysis is done on the first pass (not pinfo.visited) and kept
-- per frame; forward links and the "unacknowledged" check need a second pass (tshark -2).
--
-- Written for Lua 5.2 (Wireshark 4.0) and Lua 5.4 (Wireshark 4.4+): no native bit
-- operators, no integer division operator.

-- Loaded twice (installed as a plugin and given with -X lua_script:), the second copy
-- steps aside: Wireshark refuses a second protocol with the same name.
local source = debug and debug.getinfo and debug.getinfo(1, "S").source or "?"
if _G.FBSD_NETDUMP_LOADED ~= nil then
    io.stderr:write(string.format(
        "fbsd_netdump: already loaded from %s; %s steps aside (the loaded copy is used)\n",
        _G.FBSD_NETDUMP_LOADED, (source:gsub("^@", ""))))
    return
end
_G.FBSD_NETDUMP_LOADED = (source:gsub("^@", ""))

local HERE = source:match("^@(.*[/\\])") or ""
local function part(name)
    local path = HERE .. "fbsd_netdump/" .. name .. ".lua"
    local chunk, err = loadfile(path)
    if chunk == nil then error("fbsd_netdump: cannot load " .. path .. ": " .. tostring(err)) end
    return chunk()
end

local DEFAULT_HERALD_PORT = 20023
local DEFAULT_CLIENT_PORT = 20024
local HDR_LEN = 24
local KDH_LEN = 512
local DATASIZE = 4096

local p = Proto("fbsd_netdump", "FreeBSD netdump")
local F, OLD, E, TYPE_NAMES = part("fields")(p)
local audit = part("audit")
local files = part("files")
local S = part("state")(audit, files)

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

function p.init()
    S.reset()
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

local function unsafe_path(path)
    if path:sub(1, 1) == "/" then return true end
    for comp in path:gmatch("[^/]+") do
        if comp == ".." then return true end
    end
    return false
end

local A = part("analysis")(F, OLD, E)
local add_gen, add_flag, flags_tree = A.add_gen, A.add_flag, A.flags_tree
local CLASS, gap_missing, message_problem = A.CLASS, A.gap_missing, A.message_problem
local message_analysis, ack_analysis = A.message_analysis, A.ack_analysis
local dissect_kdh, dissect_ekcd, kdh_host = part("kdh")(F, E, bxor, add_gen)
local X = part("export")(files, bxor, part("safepath"))

-- The client's address with its real range: the IP source (destination for an ACK).
local ip_src_f, ip_dst_f = Field.new("ip.src"), Field.new("ip.dst")
local function add_client(tree, tvb, pinfo, to_client)
    local all = { (to_client and ip_dst_f or ip_src_f)() }
    local fi = all[#all]
    if fi ~= nil and fi.range ~= nil then
        tree:add(F.client, fi.range)
    else
        add_gen(tree, F.client, tvb(), to_client and pinfo.dst or pinfo.src)
    end
end

local function u64_number(tvbr)
    return tvbr(0, 4):uint() * 4294967296 + tvbr(4, 4):uint()
end

-- The first pass of "tshark -2" (and of Wireshark when nothing needs a tree) passes a
-- NULL tree: then only the analysis and the columns are done.
local function has_tree(tree)
    return tree.text ~= nil or tree.visible
end

----------------------------------------------------------------------------------------
-- Dissection
----------------------------------------------------------------------------------------
local function dissect_ack(tvb, pinfo, tree, embedded)
    pinfo.cols.protocol = "FBSD-NETDUMP"
    local seqno = tvb(0, 4):uint()
    local info = string.format("ACK seq=%d", seqno)
    local rec
    if not embedded then
        rec = S.frames[pinfo.number]
        if rec == nil and not pinfo.visited then
            rec = { frame = pinfo.number }
            S.frames[pinfo.number] = rec
            S.ack(pinfo, tostring(pinfo.dst), seqno, rec)
        end
    end
    if X.active and rec and not rec.capture_dup_of then X.packet(pinfo.number, rec) end
    if rec then
        if rec.capture_dup_of then
            info = info .. " [capture duplicate]"
        else
            if rec.unseen then info = info .. " [ACK for unseen message]" end
            if rec.dup_num then info = info .. string.format(" [dup ACK #%d]", rec.dup_num) end
        end
    end
    pinfo.cols.info = info
    -- With no tree, expert items still reach the expert tap (tshark -z expert): build the
    -- (cheap, NULL) tree only for packets that carry one.
    if has_tree(tree) or (rec and (rec.capture_dup_of or rec.unseen or rec.dup_of)) then
        local r = tvb()
        local t = tree:add(p, r, string.format("FreeBSD netdump ACK, seq %d", seqno))
        t:add(F.ack_seqno, tvb(0, 4))
        add_client(t, tvb, pinfo, true)
        if rec then ack_analysis(t, r, rec) end
    end
end


local function runt(tvb, pinfo, tree, replen)
    pinfo.cols.protocol = "FBSD-NETDUMP"
    pinfo.cols.info = string.format("Runt message (%d bytes)", replen)
    local r = tvb()
    local t = tree:add(p, r)
    add_client(t, tvb, pinfo, false)
    t:append_text(string.format(", runt (%d bytes)", replen))
    add_flag(add_gen(t, F.flags, r), F.runt, r, E.runt)
    if tvb:len() > 0 then t:add(F.payload, r) end
end

-- The tree of a message; returns the KDH host name when there is one.
local function message_tree(tree, tvb, pinfo, m, rec)
    local r = tvb()
    local t = tree:add(p, r)
    local mtype, seqno, mlen = m.mtype, m.seqno, m.mlen
    add_client(t, tvb, pinfo, false)
    t:append_text(string.format(", %s, seq %d", TYPE_NAMES[mtype] or ("type " .. mtype), seqno))
    local titem = t:add(F.type, tvb(0, 4))
    t:add(F.seqno, tvb(4, 4))
    t:add(F.offset, tvb(8, 8))
    local litem = t:add(F.length, tvb(16, 4))
    t:add(F.aux2, tvb(20, 4))
    local avail = m.caplen - HDR_LEN
    local prange
    if avail > 0 then
        prange = tvb(HDR_LEN, avail)
        t:add(F.payload, prange)
    end
    local bad = {}
    if HDR_LEN + mlen ~= m.replen then bad[#bad + 1] = { F.bad_length, E.bad_length } end
    if mlen > max_payload then bad[#bad + 1] = { F.jumbo, E.jumbo } end
    if TYPE_NAMES[mtype] == nil then titem:add_proto_expert_info(E.unknown_type) end
    local host
    if mtype == 1 then
        t:add(F.path, prange or tvb(HDR_LEN, 0), m.path)
        if m.path ~= "" and unsafe_path(m.path) then bad[#bad + 1] = { F.unsafe_path, E.unsafe_path } end
    elseif mtype == 4 and avail >= KDH_LEN and m.offset == 0 then
        host = dissect_kdh(tvb(HDR_LEN, KDH_LEN), t)
    elseif mtype == 5 and prange and m.offset == 0 then
        dissect_ekcd(prange, t)
    end
    local fl = rec ~= nil and message_analysis(t, r, rec) or nil
    if #bad > 0 then
        fl = fl or flags_tree(t, r)
        for _, b in ipairs(bad) do add_flag(fl, b[1], b[1] == F.unsafe_path and r or tvb(16, 4), b[2]) end
    end
    return host
end

local function info_text(m, host)
    local mtype, seqno = m.mtype, m.seqno
    if mtype == 1 then
        if m.path ~= "" then return "HERALD path=" .. m.path end
        return string.format("HERALD seq=%d (no path)", seqno)
    elseif mtype == 2 then
        return string.format("FINISHED seq=%d", seqno)
    elseif mtype == 3 then
        return string.format("VMCORE seq=%d off=%.0f len=%d", seqno, m.offset, m.mlen)
    elseif mtype == 4 then
        return string.format("KDH seq=%d host=%s", seqno, host or "?")
    elseif mtype == 5 then
        return string.format("EKCD_KEY seq=%d off=%.0f len=%d", seqno, m.offset, m.mlen)
    end
    return string.format("Type %d seq=%d off=%.0f len=%d", mtype, seqno, m.offset, m.mlen)
end

-- A datagram from the client with a whole header but no well-formed message: its session.
local function malformed(pinfo, mtype, embedded)
    if embedded then return end
    local rec = S.frames[pinfo.number]
    if rec == nil and not pinfo.visited then
        rec = { frame = pinfo.number }
        S.frames[pinfo.number] = rec
        S.malformed(pinfo, tostring(pinfo.src), mtype, rec)
    end
    if X.active and rec then X.packet(pinfo.number, rec) end
end

local function dissect_message(tvb, pinfo, tree, embedded)
    local replen = tvb:reported_len()
    local caplen = tvb:len()
    if replen < HDR_LEN or caplen < HDR_LEN then
        if replen >= HDR_LEN then malformed(pinfo, nil, embedded) end -- a header the capture cut
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
    if not wellformed then malformed(pinfo, mtype, embedded) end
    if wellformed and not embedded then
        rec = S.frames[pinfo.number]
        if rec == nil and not pinfo.visited then
            rec = { frame = pinfo.number, path = m.path }
            S.frames[pinfo.number] = rec
            S.message(pinfo, tostring(pinfo.src), mtype, seqno, m.offset, mlen, tvb:raw(0, caplen), rec)
        end
        if rec and pinfo.visited then
            -- recomputed on every later pass: during a live capture the ACK may still come
            rec.unacked = rec.acked_in == nil and rec.capture_dup_of == nil
                and rec.session.acked[seqno] == nil or nil
        end
    end

    if X.active and rec and not rec.capture_dup_of then
        X.message(pinfo.number, rec, mtype, m.offset, X.payload(tvb, caplen))
    end

    local host
    if has_tree(tree) or not wellformed or mlen > max_payload or mtype == 1 or mtype == 4
        or (rec and message_problem(rec)) then
        host = message_tree(tree, tvb, pinfo, m, rec)
    elseif mtype == 4 and caplen >= HDR_LEN + KDH_LEN then
        host = kdh_host(tvb)
    end
    if rec and host and rec.session.host == nil then rec.session.host = host end

    local info = info_text(m, host)
    if not wellformed then info = info .. " [malformed]" end
    if rec then
        if rec.new_dump then info = info .. " [new dump]" end
        if rec.capture_dup_of then
            info = info .. " [capture duplicate]"
        else
            if gap_missing(rec) then info = info .. " [seq gap]" end
            if rec.class then info = info .. CLASS[rec.class][3] end
            if rec.conflict then info = info .. " [conflict]" end
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
    if not pinfo.visited and not is_embedded(pinfo) then S.clock(pinfo) end
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
        add_client(t, tvb, pinfo, true)
        if tvb:len() > 0 then t:add(F.payload, tvb()) end
        t:add_proto_expert_info(E.bad_ack)
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

local stats = part("stats")(p, S)
X.register()
part("gui")(S, X, stats, files)
