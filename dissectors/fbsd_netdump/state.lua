-- fbsd_netdump: first-pass sequence analysis.  Dumps (sessions) keyed by client address,
-- one record per frame, the audit's classification of every copy (audit.lua).  Written
-- only on the first pass; later passes read the records, so they stay small.
--
-- A session begins and ends where netdumpd's (and extract's, analyzer/protocol) does: a
-- HERALD opens one, and so does any message or ACK of a client with none open (a capture
-- started late); a HERALD after dump data or a FINISHED starts the next one; a session
-- silent for 600 s of capture time ends (looked at every 10 s, as netdumpd does), and the
-- client's next packet opens a new one.  Only the HERALD that opens a session names its
-- folder.
--
-- Loaded by netdump.lua; returns a constructor taking the audit module.

local HDR_LEN = 24
local BYTES_WINDOW = 1024 -- how many recent seqnos keep their bytes (conflicts, capture copies)
local KEEP_HOLES = 4096   -- a seqno jump longer than this is not tracked seqno by seqno
local IDLE_TIMEOUT = 600e9 -- netdumpd's CLIENT_TIMEOUT (ns): a silent session is over
local SWEEP_EVERY = 10e9   -- netdumpd's CLIENT_TPASS (ns): how often it looks

-- session states, as analyzer/protocol/state.py names them
local WAITING, RECEIVING, FINISHING, OVER = 0, 1, 2, 3
local HERALD, FINISHED, VMCORE, KDH = 1, 2, 3, 4

return function(audit, files)
    local S = {}

    function S.reset()
        S.sessions = {} -- in order of first appearance
        S.current = {}  -- client address string -> its current session
        S.frames = {}   -- frame number -> record
        S.next_sweep = 0
    end
    S.reset()

    local function new_session(client, t, ns)
        local sess = {
            id = #S.sessions + 1, client = client, herald_path = nil, herald_raw = nil,
            herald_seen = false, state = WAITING, finished_seqno = nil, first_t = t, last_t = t,
            last_ns = ns,
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

    -- Every netdump datagram, first pass, before its own rule: sessions silent too long end.
    function S.clock(pinfo)
        local _, ns = times(pinfo)
        if ns < S.next_sweep then return end
        if S.next_sweep > 0 then
            for client, sess in pairs(S.current) do
                if ns - sess.last_ns > IDLE_TIMEOUT then S.current[client] = nil end
            end
        end
        S.next_sweep = ns + SWEEP_EVERY
    end

    -- The session a client message belongs to (a HERALD may start the next one); herald:
    -- the HERALD's payload, nil when the message is not whole (it names no folder then).
    local function session_for(client, mtype, t, ns, herald, rec)
        local sess = S.current[client]
        if mtype == HERALD then
            if sess ~= nil and sess.state ~= WAITING then
                rec.new_dump = true
                rec.prev_session = sess.id
                sess = nil
            end
            if sess == nil then
                sess = new_session(client, t, ns)
                if herald ~= nil then
                    sess.herald_seen = true
                    sess.herald_path = rec.path
                    sess.herald_raw = herald
                end
            end
        elseif sess == nil then
            sess = new_session(client, t, ns)
        end
        return sess
    end

    -- The dump's state moves on a VMCORE, KDH or FINISHED (copies included); ``rec.over``
    -- marks the frame that ends the dump.
    local function move(sess, mtype, seqno, rec)
        local state = sess.state
        if mtype == FINISHED and (state == WAITING or state == RECEIVING) then
            sess.state = FINISHING
            sess.finished_seqno = seqno
            if sess.acks == 0 then -- a one-way capture: no ACK will show the end
                sess.state = OVER
                rec.over = true
            end
        elseif (mtype == VMCORE or mtype == KDH) and state == WAITING then
            sess.state = RECEIVING
        end
    end

    -- A well-formed client message, first pass.  raw: the datagram's captured bytes.
    function S.message(pinfo, client, mtype, seqno, offset, length, raw, rec)
        local t, ns, abs = times(pinfo)
        local sess = session_for(client, mtype, t, ns, raw:sub(HDR_LEN + 1), rec)
        rec.session = sess
        rec.t = t
        if t > sess.last_t then sess.last_t = t end
        sess.last_ns = ns

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
        move(sess, mtype, seqno, rec)
        local class = audit.message(sess.audit, ns, mtype, seqno, offset, length, copies ~= nil,
            rec.conflict == true)
        if class ~= "new" then
            rec.class = class
            sess.classes[class] = sess.classes[class] + 1
            if class == "hidden" then sess.classes.needed = sess.classes.needed + 1 end
        end
    end

    -- A client datagram with a whole header that is no well-formed message (a wrong length,
    -- an unknown type; mtype nil when the capture cut the header): it carries nothing, but
    -- opens a session, or as a HERALD ends one, as in extract.  First pass.
    function S.malformed(pinfo, client, mtype, rec)
        local t, ns = times(pinfo)
        rec.session = session_for(client, mtype, t, ns, nil, rec)
        if mtype ~= nil then rec.session.last_ns = ns end
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
        local sess = S.current[client] or new_session(client, t, ns)
        rec.t = t
        rec.session = sess
        if t > sess.last_t then sess.last_t = t end
        sess.last_ns = ns
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
            if seqno == sess.finished_seqno and sess.state == FINISHING then
                sess.state = OVER
                rec.over = true
            end
        end
    end

    return S
end
