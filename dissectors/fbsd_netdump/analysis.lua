-- fbsd_netdump: the "Sequence analysis" subtree of a message or an ACK, from the record
-- the first pass keeps per frame (state.lua): links between copies and ACKs, and every
-- problem under one umbrella item, fbsd_netdump.analysis.flags, with its expert item and
-- its old name (hidden) for one release.  Also the item helpers the dissector uses: every
-- item carries a byte range, so other Lua scripts can read it.
--
-- Loaded by netdump.lua with the fields; returns the table of functions.

return function(F, OLD, E)
    local A = {}

    -- Every item carries a byte range: generated ones the datagram they describe.
    local function add_gen(tree, field, range, value)
        local item
        if value == nil then item = tree:add(field, range) else item = tree:add(field, range, value) end
        item:set_generated()
        return item
    end

    local function add_old(tree, field, range, value)
        local item = tree:add(field, range, value)
        item:set_generated()
        item:set_hidden()
        return item
    end

    local function add_flag(tree, field, range, ex)
        local item = add_gen(tree, field, range, true)
        if ex then item:add_proto_expert_info(ex) end
        return item
    end

    -- class -> { flag field, expert, Info text }
    local CLASS = {
        needed = { F.needed, E.needed, " [retransmission]" },
        hidden = { F.hidden, E.hidden, " [retransmission, earlier copies not captured]" },
        spurious = { F.spurious, E.spurious, " [spurious retransmission]" },
        network_duplicate = { F.network_duplicate, E.network_duplicate, " [network duplicate]" },
        out_of_order = { F.out_of_order, E.out_of_order, " [out of order]" },
    }

    local function gap_missing(rec)
        return rec.gap ~= nil and rec.gap.n > 0 and rec.gap.n or nil
    end

    local function message_problem(rec)
        return rec.class or rec.capture_dup_of or rec.conflict or rec.unacked or rec.new_dump
            or gap_missing(rec)
    end

    local function flags_tree(t, r)
        local fl = add_gen(t, F.flags, r)
        return fl
    end

    -- A link or value under its name, and under its old name (hidden) for one release.
    local function add_link(t, r, key, old_key, value)
        add_gen(t, F[key], r, value)
        add_old(t, OLD[old_key or key], r, value)
    end

    -- A problem flag with its expert item, and its old name (hidden) when it had one.
    local function add_problem(fl, r, key)
        add_flag(fl, F[key], r, E[key])
        if OLD[key] then add_old(fl, OLD[key], r, true) end
    end

    -- Returns the flags item when the frame has a problem (one umbrella item per frame).
    local function message_analysis(t, r, rec)
        add_gen(t, F.session, r, rec.session.id)
        if rec.first_copy then
            add_link(t, r, "first_copy", "retransmission_of", rec.first_copy)
            add_old(t, OLD.prev_transmission, r, rec.prev_copy or rec.first_copy)
            if rec.prev_copy then add_gen(t, F.previous_copy, r, rec.prev_copy) end
        end
        if rec.next_copy then add_link(t, r, "next_copy", "next_transmission", rec.next_copy) end
        if rec.acked_in then
            add_link(t, r, "acked_in", "ack_frame", rec.acked_in)
            add_old(t, OLD.ack_rtt, r, rec.rtt)
        end
        if rec.capture_dup_of then add_link(t, r, "capture_duplicate_of", nil, rec.capture_dup_of) end
        if not message_problem(rec) then return nil end
        local fl = flags_tree(t, r)
        if rec.capture_dup_of then
            add_problem(fl, r, "capture_duplicate")
            return fl
        end
        if rec.new_dump then
            add_problem(fl, r, "new_dump")
            add_gen(fl, F.prev_session, r, rec.prev_session)
        end
        local missing = gap_missing(rec)
        if missing then
            add_problem(fl, r, "seq_gap")
            add_link(fl, r, "seq_gap_missing", nil, missing)
        end
        local c = rec.class and CLASS[rec.class]
        if c then
            if rec.class == "needed" or rec.class == "hidden" or rec.class == "spurious" then
                add_link(fl, r, "retransmission", nil, true)
                if rec.class == "hidden" then add_gen(fl, F.needed, r, true) end
                if rec.class == "spurious" then add_old(fl, OLD.spurious, r, true) end
            end
            add_flag(fl, c[1], r, c[2])
        end
        if rec.conflict then add_problem(fl, r, "conflict") end
        if rec.unacked then add_problem(fl, r, "unacked") end
        return fl
    end

    local function ack_analysis(t, r, rec)
        if rec.session then add_gen(t, F.session, r, rec.session.id) end
        if rec.capture_dup_of then
            add_link(t, r, "capture_duplicate_of", nil, rec.capture_dup_of)
            add_problem(flags_tree(t, r), r, "capture_duplicate")
            return
        end
        if rec.acks_frame then
            add_gen(t, F.acks_frame, r, rec.acks_frame)
            add_gen(t, F.ack_rtt, r, rec.rtt)
            add_old(t, OLD.acked_frame, r, rec.acks_frame)
            add_old(t, OLD.ack_rtt, r, rec.rtt)
        end
        if rec.dup_of then add_link(t, r, "dup_ack_of", nil, rec.dup_of) end
        if not (rec.unseen or rec.dup_of) then return end
        local fl = flags_tree(t, r)
        if rec.unseen then add_problem(fl, r, "ack_unseen") end
        if rec.dup_of then
            add_problem(fl, r, "duplicate_ack")
            add_link(fl, r, "dup_ack_num", nil, rec.dup_num)
        end
    end

    A.add_gen, A.add_flag, A.flags_tree = add_gen, add_flag, flags_tree
    A.CLASS, A.gap_missing, A.message_problem = CLASS, gap_missing, message_problem
    A.message_analysis, A.ack_analysis = message_analysis, ack_analysis
    return A
end
