-- fbsd_netdump: the per-dump summary of "tshark -z fbsd_netdump,stats".
-- Loaded by netdump.lua with the Proto and the state; returns the table builder.

local function path_text(sess)
    if not sess.herald_seen then return "(no HERALD)" end
    if sess.herald_path == "" then return "(default)" end
    return sess.herald_path
end

local function retransmissions(sess)
    local c = sess.classes
    return c.needed + c.spurious
end

return function(p, S)
    local function stats_table()
        local lines = {}
        local sep = string.rep("=", 132)
        lines[#lines + 1] = sep
        lines[#lines + 1] = "FreeBSD netdump (fbsd_netdump) dump summary"
        lines[#lines + 1] = sep
        lines[#lines + 1] = string.format("%-4s %-15s %-20s %6s %8s %8s %5s %8s %8s %7s %6s %12s %10s",
            "Dump", "Client", "HERALD path", "HERALD", "FINISHED", "VMCORE", "KDH", "EKCD_KEY", "ACK",
            "Retrans", "DupACK", "Data bytes", "Duration")
        for _, sess in ipairs(S.sessions) do
            lines[#lines + 1] = string.format("%-4d %-15s %-20s %6d %8d %8d %5d %8d %8d %7d %6d %12.0f %10.3f",
                sess.id, sess.client, path_text(sess), sess.counts[1], sess.counts[2], sess.counts[3],
                sess.counts[4], sess.counts[5], sess.acks, retransmissions(sess), sess.dup_acks,
                sess.data_bytes, sess.last_t - sess.first_t)
        end
        lines[#lines + 1] = sep
        return table.concat(lines, "\n")
    end

    local function stats_init()
        local tap = Listener.new("frame", "fbsd_netdump")
        function tap.draw() print(stats_table()) end
        function tap.reset() end
        function tap.packet() end
    end
    register_stat_cmd_arg("fbsd_netdump,stats", stats_init)
    return { table = stats_table, path_text = path_text, retransmissions = retransmissions }
end
