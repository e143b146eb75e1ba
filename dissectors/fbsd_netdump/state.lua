-- fbsd_netdump: first-pass sequence analysis.  Dumps (sessions) keyed by client address,
-- one record per frame, the audit's classification of every copy (audit.lua).  Written
-- only on the first pass; later passes read the records, so they stay small.
--
-- Loaded by netdump.lua; returns a constructor taking the audit module.

local HDR_LEN = 24
local BYTES_WINDOW = 1024 -- how many recent seqnos keep their bytes (conflicts, capture copies)
local KEEP_HOLES = 4096   -- a seqno jump longer than this is not tracked seqno by seqno

return function(audit, files)
    local S = {}

    function S.reset()
        S.sessions = {} -- in order of first appearance
        S.current = {}  -- client address string -> its current session
        S.frames = {}   -- frame number -> record
    end
    S.reset()

    local function new_session(client, t)
        local sess = {
            id = #S.sessions + 1, client = client, herald_path = nil, herald_raw = nil,
            herald_seen = false, data_seen = false, first_t = t, last_t = t,
            counts = { 0, 0, 0, 0, 0 }, acks = 0, dup_acks = 0, data_bytes = 0,
            classes = { needed = 0, spurious = 0, hidden = 0, network_duplicate = 0,
                        out_of_order = 0, capture_duplicate = 0 },
            max_seq = nil, finished = false, host = nil,
            tx = {},        -- seqno -> { first copy record, latest copy record }
            bytes = {},     -- seqno -> raw bytes of the latest copy (recent seqnos only)
            acked = {},     -- seqno -> first ACK record
            holes = {},     -- seqno not (yet) captured -> its gap object
            vmcore = files.ranges(), dumplength = nil, -- for the Dumps window
            audit = audit.new(),
        }
        S.sessions[#S.sessions + 1] = sess
        S.current[client] = sess
        return sess
    end

    -- t: seconds since the capture's start (double); ns: integer nanoseconds for the audit
    local function times(pinfo)
        local t = pinfo.rel_ts
        return t, math.floor(t * 1e9 + 0.5) + 1e12, pinfo.abs_ts
    end

    -- A well-formed client message, first pass.  raw: the datagram's captured bytes.
    function S.message(pinfo, client, mtype, seqno, offset, length, raw, rec)
        local t, ns, abs = times(pinfo)
        local sess = S.current[client]
        if mtype == 1 then
            if sess ~= nil and sess.data_seen then
                rec.new_dump = true
                rec.prev_session = sess.id
                sess = nil
            end
            if sess == nil then sess = new_session(client, t) end
            if not sess.herald_seen then
                sess.herald_seen = true
                sess.herald_path = rec.path
                sess.herald_raw = raw:sub(HDR_LEN + 1)
            end
        else
            if sess == nil then sess = new_session(client, t) end
            if mtype == 3 or mtype == 4 then sess.data_seen = true end
        end
        rec.session = sess
        rec.t = t
        if t > sess.last_t then sess.last_t = t end

        local copies = sess.tx[seqno]
        local last_raw = sess.bytes[seqno]
        if copies then
            local last = copies[2]
            if last_raw ~= nil and last_raw == raw and last.abs == abs then
                rec.capture_dup_of = last.frame
                sess.classes.capture_duplicate = sess.classes.capture_duplicate + 1
                return
            end
            rec.first_copy = copies[1].frame
            if last ~= copies[1] then rec.prev_copy = last.frame end
            last.next_copy = pinfo.number
            rec.prev_rec = last
            copies[2] = rec
            if last_raw ~= nil and last_raw ~= raw and last_raw:sub(HDR_LEN + 1) ~= raw:sub(HDR_LEN + 1) then
                rec.conflict = true -- other payload bytes (the core compares payloads)
            end
        else
            sess.tx[seqno] = { rec, rec }
            local max = sess.max_seq
            if max ~= nil and seqno > max + 1 then
                local n = seqno - max - 1
                local gap = { n = n }
                rec.gap = gap
                if n <= KEEP_HOLES then
                    for s = max + 1, seqno - 1 do sess.holes[s] = gap end
                end
            elseif max ~= nil and seqno < max then
                local gap = sess.holes[seqno]
                if gap then
                    gap.n = gap.n - 1
                    sess.holes[seqno] = nil
                end
            end
            if max == nil or seqno > max then
                sess.max_seq = seqno
                local old = seqno - BYTES_WINDOW
                if old >= 0 then sess.bytes[old] = nil end
            end
            if mtype == 3 then sess.data_bytes = sess.data_bytes + length end
        end
        rec.abs = abs
        if mtype == 3 then
            files.add(sess.vmcore, offset, offset + length)
        elseif mtype == 4 and #raw >= HDR_LEN + 512 then
            sess.dumplength = files.kdh_dumplength(raw:sub(HDR_LEN + 1))
        end
        sess.bytes[seqno] = raw
        sess.counts[mtype] = sess.counts[mtype] + 1
        if mtype == 2 then sess.finished = true end
        local class = audit.message(sess.audit, ns, mtype, seqno, offset, length, copies ~= nil,
            rec.conflict == true)
        if class ~= "new" then
            rec.class = class
            sess.classes[class] = sess.classes[class] + 1
            if class == "hidden" then sess.classes.needed = sess.classes.needed + 1 end
        end
    end

    local function time_diff(t1, t2)
        -- t2 - t1 (seconds as doubles) as an NSTime rounded to the nanosecond
        local ns = math.floor((t2 - t1) * 1e9 + 0.5)
        local secs = math.floor(ns / 1e9)
        return NSTime.new(secs, ns - secs * 1000000000)
    end

    -- An ACK, first pass.
    function S.ack(pinfo, client, seqno, rec)
        local t, ns, abs = times(pinfo)
        local sess = S.current[client]
        rec.t = t
        if sess == nil then
            rec.unseen = true
            return
        end
        rec.session = sess
        if t > sess.last_t then sess.last_t = t end
        local first = sess.acked[seqno]
        if first and first.abs == abs then
            rec.capture_dup_of = first.frame
            sess.classes.capture_duplicate = sess.classes.capture_duplicate + 1
            return
        end
        rec.abs = abs
        sess.acks = sess.acks + 1
        local copies = sess.tx[seqno]
        if copies == nil then
            rec.unseen = true
        else
            local m = copies[2]
            rec.acks_frame = m.frame
            rec.rtt = time_diff(m.t, t)
            if m.acked_in == nil then
                m.acked_in = pinfo.number
                m.rtt = rec.rtt
            end
            -- earlier copies not yet acknowledged are acknowledged by this ACK too
            local c = m.prev_rec
            while c ~= nil and c.acked_in == nil do
                c.acked_in = pinfo.number
                c.rtt = time_diff(c.t, t)
                c = c.prev_rec
            end
        end
        audit.ack(sess.audit, ns, seqno, first ~= nil)
        if first then
            rec.dup_of = first.frame
            first.dups = (first.dups or 0) + 1
            rec.dup_num = first.dups
            sess.dup_acks = sess.dup_acks + 1
        else
            sess.acked[seqno] = rec
        end
    end

    return S
end
