-- fbsd_netdump: the pieces of netdumpd's files that need no Wireshark API: byte ranges,
-- the kerneldumpheader as netdumpd reads it, the info file's text and the HERALD path
-- rules.  The same rules as analyzer/recovery (infofile.py, paths.py, dump.py), so that
-- the export writes what "netdump-analyzer extract" writes.
--
-- Loaded by export.lua; returns the module table.

local M = {}

local KDH_SIZE = 512
local MAX_PATH = 1024
M.MAX_DUMP_SIZE = 2 ^ 40 -- extract's default --max-dump-size (1 TiB)
M.MAX_KEY = 2 ^ 20       -- a key blob is 4096 bytes; offsets past 1 MiB are refused

-- Byte ranges held: sorted, disjoint, non-touching {start, end} pairs.
function M.ranges() return { max = 0 } end

function M.add(rs, s, e)
    if e <= s then return end
    if e > rs.max then rs.max = e end
    local n = #rs
    local last = rs[n]
    if last == nil or s > last[2] then rs[n + 1] = { s, e }; return end
    if s >= last[1] then if e > last[2] then last[2] = e end; return end
    local i = 1
    while i <= #rs and rs[i][2] < s do i = i + 1 end
    local j = i
    local ns, ne = s, e
    while j <= #rs and rs[j][1] <= e do
        if rs[j][1] < ns then ns = rs[j][1] end
        if rs[j][2] > ne then ne = rs[j][2] end
        j = j + 1
    end
    for _ = i, j - 1 do table.remove(rs, i) end
    table.insert(rs, i, { ns, ne })
end

function M.gaps(rs, lo, hi)
    local out, pos = {}, lo
    for _, r in ipairs(rs) do
        if r[1] >= hi then break end
        if r[1] > pos then out[#out + 1] = { pos, r[1] } end
        if r[2] > pos then pos = r[2] end
    end
    if pos < hi then out[#out + 1] = { pos, hi } end
    return out
end

-- integers from a byte string (offset from 0)
local function be(raw, off, n)
    local v = 0
    for i = 1, n do v = v * 256 + raw:byte(off + i) end
    return v
end
local function le(raw, off, n)
    local v = 0
    for i = n, 1, -1 do v = v * 256 + raw:byte(off + i) end
    return v
end
local function signed(v, bits)
    if v >= 2 ^ (bits - 1) then return v - 2 ^ bits end
    return v
end
local function cbytes(raw, off, n)
    return (raw:sub(off + 1, off + n):match("^[^%z]*"))
end

-- kerneldumpheader field offsets per version (v4 layout when unknown): dumpkeysize
local KEYSIZE_AT = { [2] = 56, [3] = 64, [4] = 56 }

function M.kdh_dumplength(raw) return be(raw, 40, 8) end

function M.kdh_dumpkeysize(raw)
    local at = KEYSIZE_AT[be(raw, 32, 4)]
    if be(raw, 32, 4) == 1 then return 0 end
    return be(raw, at or 56, 4)
end

-- netdumpd compares version and dumpkeysize without byte-swapping them (little-endian view)
function M.server_view(raw)
    local raw_version = le(raw, 32, 4)
    local compression = raw:byte(496)
    local suffixes = { [1] = ".gz", [2] = ".zst" }
    local compressed = raw_version >= 3 and suffixes[compression] ~= nil
    return {
        encrypted = raw_version >= 2 and le(raw, 56, 4) > 0,
        suffix = compressed and suffixes[compression] or "",
    }
end

local function parity_fails(raw, bxor)
    local acc = 0
    for i = 0, 127 do acc = bxor(acc, be(raw, i * 4, 4)) end
    return acc % 4294967296 ~= 0
end

local COMPRESSION_TEXT = { [0] = "none", [1] = "gzip", [2] = "zstd", [3] = "(null)" }

local DAYS = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" }
local MONTHS = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" }

-- ctime(3) in UTC with its newline; "(null)" where ctime would fail
local function ctime_utc(t)
    local ok, d = pcall(os.date, "!*t", t)
    if not ok or type(d) ~= "table" then return "(null)" end
    return string.format("%s %s %2d %02d:%02d:%02d %d\n", DAYS[d.wday], MONTHS[d.month], d.day,
        d.hour, d.min, d.sec, d.year)
end

-- The lines netdumpd appends for one KDH message (its payload, as received).
function M.kdh_block(raw, bxor)
    if #raw < KDH_SIZE then return "Bad KDH: packet too small\n" end
    raw = raw:sub(1, KDH_SIZE)
    local dumplen = signed(be(raw, 40, 8), 64)
    local lines = {
        "  Architecture: " .. cbytes(raw, 20, 11) .. "\n",
        string.format("  Architecture Version: %d\n", signed(be(raw, 36, 4), 32)),
        string.format("  Dump Length: %.0fB (%.0f MB)\n", dumplen, math.floor(dumplen / 1048576)),
        string.format("  Blocksize: %d\n", signed(be(raw, 60, 4), 32)),
    }
    if le(raw, 32, 4) >= 3 then
        lines[#lines + 1] = "  Compression: " .. (COMPRESSION_TEXT[raw:byte(496)] or "???") .. "\n"
    end
    lines[#lines + 1] = "  Dumptime: " .. ctime_utc(signed(be(raw, 48, 8), 64))
    lines[#lines + 1] = "  Hostname: " .. cbytes(raw, 64, 63) .. "\n"
    lines[#lines + 1] = "  Version String: " .. cbytes(raw, 128, 191)
    lines[#lines + 1] = "  Panic String: " .. cbytes(raw, 320, 174) .. "\n"
    lines[#lines + 1] = "  Header Parity Check: " .. (parity_fails(raw, bxor) and "Fail" or "Pass") .. "\n"
    return table.concat(lines)
end

function M.first_line(ip) return string.format("Dump from %s [%s]\n", ip, ip) end
M.STATUS_COMPLETE = "Dump complete\n"
M.STATUS_TIMED_OUT = "Dump incomplete: client timed out\n"
M.STATUS_IN_PROGRESS = "Dump incomplete: extraction in progress\n"

function M.missing_lines(gaps, what)
    local out = {}
    for _, g in ipairs(gaps) do
        out[#out + 1] = string.format("  Missing %s bytes: [%.0f, %.0f) (%.0f bytes)\n", what, g[1], g[2], g[2] - g[1])
    end
    return table.concat(out)
end

-- The directories below the output directory for a HERALD payload (path + NUL), as
-- netdumpd's sandbox checks it; {} (the top) when there is none or it is refused.
function M.herald_parts(payload)
    if payload == nil or payload == "" then return {} end
    if #payload > MAX_PATH or payload:sub(-1) ~= "\0" then return {} end
    local raw = payload:sub(1, -2)
    if raw:find("\0", 1, true) then return {} end
    local c = raw:sub(1, 1)
    if c == "/" or c == "\\" then return {} end
    local parts = {}
    for part in (raw:gsub("\\", "/") .. "/"):gmatch("([^/]*)/") do
        if part == ".." then return {} end
        if part ~= "" and part ~= "." then
            if #part > 255 then return {} end
            parts[#parts + 1] = part
        end
    end
    return parts
end

-- The index a file name holds for ``host`` (info., vmcore., vmcore_encrypted., key.), or nil.
function M.index_of(name, host)
    for _, stem in ipairs({ "info.", "vmcore.", "vmcore_encrypted.", "key." }) do
        if name:sub(1, #stem) == stem then
            local rest = name:sub(#stem + 1)
            local h, idx = rest:match("^(.*)%.(%d+)$")
            if h == nil then h, idx = rest:match("^(.*)%.(%d+)%.[^.]*$") end
            if h == host then return tonumber(idx) end
            return nil
        end
    end
    return nil
end

return M
