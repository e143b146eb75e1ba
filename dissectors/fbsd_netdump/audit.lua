-- fbsd_netdump: the retransmission classification of the Python audit (analyzer/audit,
-- bursts.py and session.py), kept in the same shape so that the dissector and the audit
-- call every copy the same thing.
--
-- The client sends one buffer as a burst of consecutive seqnos, waits for every ACK and
-- resends the unacknowledged ones after its ~1 s poll timeout.  A capture taken at the
-- server never sees copies lost on the way, so a resend can be the first copy it shows:
-- such "hidden" resends are told by timing.  Per-seqno detail lives only in the current
-- and the previous burst.  Times are integer nanoseconds held in doubles (exact to 2^53).
--
-- Loaded by netdump.lua; returns the module table (nothing happens when loaded alone).

local M = {}

local HERALD, FINISHED, VMCORE, KDH = 1, 2, 3, 4
M.ROUND_GAP = 100000000   -- a pause this long between resends starts a new round (ns)
M.DUP_WINDOW = 1000000000 -- the default poll timeout: a copy sooner than half of it (or of
                          -- the shortest timeout seen) is a network duplicate (ns)
local MAX_BUFFER = 65536  -- the largest send call
local KEEP_UNACKED = 4096 -- folded seqnos still waiting for a (late) ACK

local floor = math.floor

-- Python's round(): halves go to the even neighbour.
local function round_even(x)
    local f = floor(x)
    local d = x - f
    if d > 0.5 or (d == 0.5 and f % 2 == 1) then return f + 1 end
    return f
end

-- How many whole poll timeouts ``gap`` looks like (0: not a timeout multiple).
function M.timeouts_in(gap, timeout)
    local k, lo, hi
    if timeout == nil then
        k = gap < 1600000000 and 1 or 2
        lo, hi = k * 950000000, k * 1300000000
    else
        k = round_even(gap / timeout)
        if k < 1 then k = 1 end
        if k > 4 then return 0 end
        lo, hi = k * timeout * 0.95 - 20000000, k * timeout * 1.05 + 30000000
    end
    if lo <= gap and gap <= hi then return k end
    return 0
end
local timeouts_in = M.timeouts_in

function M.new()
    return {
        cur = nil, prev = nil, bursts = 0,
        seq_max = 0, spacing = 0, last_tx_ts = 0, last_ts = 0, gap_ack = 0, acks = 0,
        turnaround = nil, -- shortest last-ACK-to-next-burst time where the sizes ended a burst
        timeouts = {},                       -- sorted observed resend timeouts
        old = {}, old_q = {}, old_head = 1, old_n = 0, old_serial = 0, -- unacked, folded
    }
end

local function median_timeout(A)
    local n = #A.timeouts
    if n == 0 then return nil end
    return A.timeouts[math.max(1, math.ceil(n / 2))]
end

local function add_timeout(A, v)
    local t = A.timeouts
    local i = #t
    while i > 0 and t[i] > v do t[i + 1] = t[i]; i = i - 1 end
    t[i + 1] = v
end

local function new_burst(A, mtype, seq, offset, length, ts)
    A.bursts = A.bursts + 1
    return {
        type = mtype, first_seq = seq, last_seq = seq, packets = 0,
        off_start = offset, off_next = offset, first_len = length, last_len = length,
        last_tx_ts = ts, last_ack_ts = 0, unacked = 0, rounds = 0, round_last_seq = 0, in_round = false,
        slots = {},
    }
end

-- Does new seqno ``seq`` at ``offset`` carry on this burst's buffer?
local function continues(b, mtype, seq, offset)
    if mtype ~= b.type or mtype == HERALD or mtype == FINISHED or mtype == KDH then return false end
    local skipped = seq - b.last_seq - 1
    if skipped < 0 or offset ~= b.off_next + skipped * b.first_len then return false end
    return b.last_len == b.first_len
end

local function unfinished(b)
    return b.last_len == b.first_len and b.off_next - b.off_start < MAX_BUFFER
end

-- Had the client every ACK of ``b`` and time to start its next call?  A VMCORE or key
-- call is whole 4 KiB blocks; with ACKs in the capture, the time since the last one against
-- the shortest turnaround seen; one-way, the gap against the packet spacing.
local function moved_on(A, b, gap, ts)
    if (b.type == VMCORE or b.type == 5) and (b.off_next - b.off_start) % 4096 ~= 0 then return false end
    if A.acks > 0 then
        if b.unacked > 0 then return false end
        if A.turnaround ~= nil then return ts - b.last_ack_ts >= floor(A.turnaround / 2) end
    end
    return gap > math.max(4 * A.spacing, 50000)
end

local function learn_turnaround(A, t)
    if 0 < t and t < M.ROUND_GAP and (A.turnaround == nil or t < A.turnaround) then A.turnaround = t end
end

-- A gap of whole poll timeouts before a new burst: was the client waiting on the previous
-- call rather than resending this one?
local function wait_explained(A, prev)
    if prev == nil then return false end
    return prev.unacked > 0 or prev.packets < prev.last_seq - prev.first_seq + 1 or A.gap_ack > M.ROUND_GAP
end

-- half the shortest resend timeout seen (half the default before any)
local function dup_window(A)
    return floor((A.timeouts[1] or M.DUP_WINDOW) / 2)
end

-- unacked_old: an insertion-ordered set of seqnos with no ACK when their burst was folded
local function old_remove(A, seq)
    if A.old[seq] == nil then return false end
    A.old[seq] = nil
    A.old_n = A.old_n - 1
    return true
end

local function old_add(A, seq)
    if A.old[seq] ~= nil then old_remove(A, seq) end
    if A.old_n >= KEEP_UNACKED then
        local q = A.old_q
        while true do
            local e = q[A.old_head]
            q[A.old_head] = nil
            A.old_head = A.old_head + 1
            if A.old[e[1]] == e[2] then old_remove(A, e[1]); break end
        end
    end
    A.old_serial = A.old_serial + 1
    A.old[seq] = A.old_serial
    A.old_n = A.old_n + 1
    A.old_q[#A.old_q + 1] = { seq, A.old_serial }
end

local function fold(A, b)
    if b.unacked > 0 then
        for seq, slot in pairs(b.slots) do
            if not slot.ack then old_add(A, seq) end
        end
    end
    b.slots = {}
end

local function open_burst(A, mtype, seq, offset, length, ts)
    if A.prev ~= nil then fold(A, A.prev) end
    A.prev = A.cur
    A.cur = new_burst(A, mtype, seq, offset, length, ts)
    return A.cur
end

-- Account a resend of ``seq`` in burst ``b``.
local function round(A, b, ts, seq)
    if not b.in_round or seq <= b.round_last_seq or ts - b.last_tx_ts > M.ROUND_GAP then
        local wait = ts - b.last_tx_ts
        local k = timeouts_in(wait, median_timeout(A))
        if k == 0 then k = 1 end
        b.rounds = b.rounds + k
        b.in_round = true
        add_timeout(A, floor(wait / k))
    end
    b.round_last_seq = seq
end

local function slot(ts, resent)
    return { ts = ts, sends = resent and 2 or 1, ack = false, last = ts }
end

-- A new seqno below the highest: its earlier copy was lost, or it was reordered.
local function late_first(A, ts, mtype, seq, offset)
    local cur, prev = A.cur, A.prev
    local b
    if cur ~= nil and (seq >= cur.first_seq or prev == nil or seq > prev.last_seq) then
        b = cur
    elseif prev ~= nil and seq >= prev.first_seq then
        b = prev
    end
    if b == nil then return "hidden" end
    local resend = b.in_round or ts - b.last_tx_ts > M.ROUND_GAP
    if resend then
        round(A, b, ts, seq)
        b.last_tx_ts = ts
    end
    if seq < b.first_seq then b.first_seq = seq end
    if offset < b.off_start then b.off_start = offset end
    b.packets = b.packets + 1
    b.unacked = b.unacked + 1
    b.slots[seq] = slot(ts, resend)
    return resend and "hidden" or "out_of_order"
end

-- A seqno the capture shows for the first time.
local function first_copy(A, ts, mtype, seq, offset, length, gap)
    if seq <= A.seq_max then return late_first(A, ts, mtype, seq, offset) end
    A.seq_max = seq
    local cur = A.cur
    local hidden = false
    if cur ~= nil and continues(cur, mtype, seq, offset) and offset + length - cur.off_start <= MAX_BUFFER then
        if cur.in_round and ts - cur.last_tx_ts <= M.ROUND_GAP then
            if moved_on(A, cur, gap, ts) then
                cur = nil -- every packet ACKed, then a pause: the next call
            else
                hidden = true -- more of the resend round: the tail's first copies were lost
            end
        elseif gap > M.ROUND_GAP and unfinished(cur) and timeouts_in(gap, median_timeout(A)) > 0
                and not (cur.packets == 1 and cur.unacked == 0 and A.acks > 0) then
            round(A, cur, ts, seq)
            hidden = true
        elseif cur.rounds > 0 or moved_on(A, cur, gap, ts) then
            cur = nil
        end
    else
        if cur ~= nil and cur.unacked == 0 and cur.last_ack_ts ~= 0 and A.acks > 0 then
            learn_turnaround(A, ts - cur.last_ack_ts)
        end
        cur = nil
    end
    if cur == nil then
        local k = A.cur ~= nil and timeouts_in(gap, median_timeout(A)) or 0
        if k > 0 and wait_explained(A, A.cur) then
            -- the previous call's resends went uncaptured: its rounds, not this burst's
            A.cur.rounds = A.cur.rounds + k
            k = 0
        end
        cur = open_burst(A, mtype, seq, offset, length, ts)
        if k > 0 then
            cur.rounds = k
            cur.in_round = true
            hidden = true
        end
    elseif not hidden and cur.packets > 0 and cur.rounds == 0 then
        local spacing = ts - cur.last_tx_ts
        if A.spacing == 0 then A.spacing = spacing else A.spacing = floor((7 * A.spacing + spacing) / 8) end
    end
    cur.packets = cur.packets + 1
    cur.last_seq = seq
    cur.off_next = offset + length
    cur.last_len = length
    cur.last_tx_ts = ts
    cur.unacked = cur.unacked + 1
    cur.slots[seq] = slot(ts, hidden)
    return hidden and "hidden" or "new"
end

-- A copy of a seqno already captured.
local function resend(A, ts, seq, conflict)
    local b = A.cur
    local s = b and b.slots[seq]
    if s == nil and A.prev ~= nil then
        s = A.prev.slots[seq]
        if s ~= nil then b = A.prev end
    end
    if s ~= nil and ts - s.last < dup_window(A) and not conflict then
        return "network_duplicate" -- the same bytes, sooner than any resend could come
    end
    if s == nil then
        return A.old[seq] ~= nil and "needed" or "spurious"
    end
    round(A, b, ts, seq)
    b.last_tx_ts = ts
    s.sends = s.sends + 1
    s.last = ts
    return s.ack and "spurious" or "needed"
end

-- One well-formed message in capture order.  Returns its class: "new", "out_of_order",
-- "hidden" (a needed resend whose earlier copies the capture never saw), "needed",
-- "spurious" or "network_duplicate".
function M.message(A, ts, mtype, seq, offset, length, retransmit, conflict)
    local last_tx = A.last_tx_ts
    local gap = last_tx ~= 0 and ts - last_tx or 0
    A.gap_ack = last_tx ~= 0 and A.last_ts - last_tx or 0 -- to the last event before this one
    A.last_ts = ts
    local class
    if retransmit then
        class = resend(A, ts, seq, conflict)
    else
        class = first_copy(A, ts, mtype, seq, offset, length, gap)
    end
    A.last_tx_ts = ts
    return class
end

-- One ACK (``duplicate``: an ACK of this seqno was captured before).
function M.ack(A, ts, seq, duplicate)
    A.acks = A.acks + 1
    A.last_ts = ts
    local b = A.cur
    local s = b and b.slots[seq]
    if s == nil and A.prev ~= nil then
        b = A.prev
        s = b.slots[seq]
    end
    if s == nil then
        if not duplicate then old_remove(A, seq) end
        return
    end
    if not duplicate then
        s.ack = true
        b.unacked = b.unacked - 1
        b.last_ack_ts = ts
    end
end

return M
