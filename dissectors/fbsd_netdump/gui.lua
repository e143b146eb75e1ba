-- fbsd_netdump: the Wireshark menus.  Tools > FreeBSD netdump > Dumps... lists each dump
-- with buttons to export the dumps (the code of -z fbsd_netdump,export), to filter one dump
-- and to colour the problem frames (temporary colour slots); Statistics > FreeBSD netdump
-- shows the -z fbsd_netdump,stats table.  The export retaps the packets (a Listener with
-- retap_packets): the dissector hands every message to the exporter once more.
--
-- FBSD_NETDUMP_GUI (a global table) exposes the same actions to a test script, and in
-- FBSD_NETDUMP_GUI.menus the function each menu item runs.
-- Loaded by netdump.lua; registers nothing outside the GUI.

return function(S, X, stats, files)
    local G = {}

    local function retap()
        local tap = Listener.new("frame", "fbsd_netdump")
        retap_packets()
        tap:remove()
    end

    local function dump_lines(sess)
        local c = sess.classes
        local length = sess.dumplength or sess.vmcore.max
        local missing = 0
        for _, g in ipairs(files.gaps(sess.vmcore, 0, length)) do missing = missing + g[2] - g[1] end
        local messages = 0
        for i = 1, 5 do messages = messages + sess.counts[i] end
        return string.format("Dump %d: client %s, path %s, host %s\n", sess.id, sess.client,
                stats.path_text(sess), sess.host or "?")
            .. string.format("  messages %d, resends %d, length %.0f, missing bytes %.0f,\n",
                messages, c.needed + c.spurious, length, missing)
            .. string.format("  duration %.3f s, finished %s\n", sess.last_t - sess.first_t,
                sess.finished and "yes" or "no")
    end

    function G.dumps_text()
        local lines = {}
        for _, sess in ipairs(S.sessions) do lines[#lines + 1] = dump_lines(sess) end
        if #S.sessions == 0 then lines[1] = "(no netdump traffic in this capture)\n" end
        return table.concat(lines, "\n")
    end

    -- The export of -z fbsd_netdump,export: every packet handed over once more.  Returns
    -- the report and whether the packets were retapped (not while a file is being read).
    function G.export(dir)
        if not X.begin(dir) then return "cannot use output directory " .. dir .. "\n", false end
        retap()
        local retapped = X.last_frame > 0
        local written = X.finish()
        local out = { string.format("Exported %d dump(s), %d file(s) under %s:", #X.dumps, #written, dir) }
        for _, f in ipairs(written) do out[#out + 1] = "  " .. f end
        for _, e in ipairs(X.errors) do out[#out + 1] = "  " .. e end
        return table.concat(out, "\n") .. "\n", retapped
    end

    function G.filter(n)
        local id = tonumber(n)
        if id == nil or S.sessions[id] == nil then return "no dump " .. tostring(n) .. "\n" end
        set_filter("fbsd_netdump.session == " .. id)
        apply_filter()
        return "filter: fbsd_netdump.session == " .. id .. "\n"
    end

    function G.colour()
        -- temporary colour slots, gone with the session: 1 problems, 2 the rest of netdump
        set_color_filter_slot(1, "fbsd_netdump.analysis.flags")
        set_color_filter_slot(2, "fbsd_netdump && !fbsd_netdump.analysis.flags")
        return "colouring: slot 1 fbsd_netdump.analysis.flags, slot 2 the other netdump frames\n"
    end

    -- The windows read what the dissector's first pass found: no retap needed.
    function G.dumps_window()
        local tw = TextWindow.new("FreeBSD netdump: dumps")
        tw:set(G.dumps_text())
        tw:add_button("Export dumps...", function()
            new_dialog("Export dumps", function(dir) tw:append((G.export(dir))) end, "Folder")
        end)
        tw:add_button("Filter this dump", function()
            new_dialog("Filter this dump", function(n) tw:append(G.filter(n)) end, "Dump number")
        end)
        tw:add_button("Colour problems", function() tw:append(G.colour()) end)
        return tw
    end

    function G.stats_window()
        local tw = TextWindow.new("FreeBSD netdump: statistics")
        tw:set(stats.table() .. "\n")
        return tw
    end

    -- what each menu item runs, by its full path (a test script calls the same functions)
    G.menus = {
        ["Tools/FreeBSD netdump/Dumps..."] = G.dumps_window,
        ["Statistics/FreeBSD netdump"] = G.stats_window,
    }

    _G.FBSD_NETDUMP_GUI = G
    if gui_enabled() then
        register_menu("FreeBSD netdump/Dumps...", G.menus["Tools/FreeBSD netdump/Dumps..."], MENU_TOOLS_UNSORTED)
        register_menu("FreeBSD netdump", G.menus["Statistics/FreeBSD netdump"], MENU_STAT_UNSORTED)
    end
    return G
end
