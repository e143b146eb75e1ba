-- fbsd_netdump: export every dump's files as "netdump-analyzer extract" writes them:
-- vmcore.<ip>.<N> (vmcore_encrypted, .gz/.zst as the KDH says), key.<ip>.<N> and
-- info.<ip>.<N> with the missing ranges, under the HERALD's directory when netdumpd's path
-- rules accept it, N the first index free (or bounds.<ip>).  Payloads go to their offsets,
-- holes stay holes, and no existing file is ever overwritten.
--
-- The dissector hands every well-formed message to X.message, and every ACK and malformed
-- message to X.packet (capture copies excepted), in capture order; the export of
-- "tshark -z fbsd_netdump,export,DIR" and the GUI's button share this code.  A dump's
-- files are reserved when its session opens (an ACK or a malformed message may open it)
-- and no data is taken once a finished dump is whole, as in extract.  Every folder and file below DIR is checked by safepath.lua: a symbolic link
-- is never followed and nothing is overwritten.
--
-- Loaded by netdump.lua; returns the exporter.

local HDR_LEN = 24
local KDH_SIZE = 512
local MAX_DUMPS = 1024
local COPY_CHUNK = 1048576

return function(files, bxor, safe)
    local X = { active = false }

    -- the HERALD's folder below the top one, each part a real folder of its parent, or nil
    local function herald_dir(top, parts)
        local path = top
        for _, name in ipairs(parts) do
            path = safe.dir_in(path, name)
            if path == nil then return nil end
        end
        return path
    end

    -- indices taken per host in a directory, listed once per export
    local function taken(dir, host)
        X.listed[dir] = X.listed[dir] or {}
        local known = X.listed[dir][host]
        if known then return known end
        known = {}
        local ok, it = pcall(Dir.open, dir)
        if ok and it then
            for name in it do
                local idx = files.index_of(name, host)
                if idx then known[idx] = true end
            end
        end
        X.listed[dir][host] = known
        return known
    end

    local function bounds_hint(dir, host)
        local f = io.open(dir .. "/bounds." .. host, "rb")
        if f == nil then return nil end
        local text = (f:read(16) or ""):match("^%s*(%d+)%s*\n?")
        f:close()
        return text and tonumber(text)
    end

    local function start(sess)
        local dir = herald_dir(X.top, files.herald_parts(sess.herald_raw)) or X.top
        local host = sess.client
        local used = taken(dir, host)
        local order = {}
        local hint = bounds_hint(dir, host)
        if hint and hint >= 0 and hint < MAX_DUMPS then order[1] = hint end
        for i = 0, MAX_DUMPS - 1 do order[#order + 1] = i end
        for _, idx in ipairs(order) do
            local info = string.format("%s/info.%s.%d", dir, host, idx)
            local part = string.format("%s/vmcore.%s.%d.part", dir, host, idx)
            local f = not used[idx] and safe.create(info)
            if f then
                f:write(files.first_line(host), files.STATUS_IN_PROGRESS)
                f:close()
                used[idx] = true
                local vf = safe.create(part, "w+b")
                if vf then
                    local d = {
                        sess = sess, dir = dir, host = host, index = idx, info = info,
                        vmcore_part = part, vmcore = files.ranges(), key = files.ranges(),
                        size = 0, blocks = {}, kdh_raw = nil, finished = false, vf = vf,
                    }
                    X.dumps[#X.dumps + 1] = d
                    return d
                end
                os.remove(info)
            end
        end
        X.errors[#X.errors + 1] = "no free index below 1024 for " .. host .. "; dump not written"
        return false
    end

    -- KDH dumplength (unless past the size limit), else what arrived
    local function vmcore_length(d)
        if d.kdh_raw and d.kdh_length_ok then return files.kdh_dumplength(d.kdh_raw) end
        return d.vmcore.max
    end

    local function vmcore_limit(d)
        local len = vmcore_length(d)
        if files.server_view(d.kdh_raw).suffix ~= "" then return math.ceil(len / 4096) * 4096 end
        return len
    end

    local function write_at(f, off, data)
        f:seek("set", off)
        f:write(data)
    end

    function X.begin(top)
        X.top = (top:gsub("/+$", ""))
        if X.top == "" then X.top = "/" end
        X.dumps, X.by_session, X.listed, X.errors = {}, {}, {}, {}
        X.last_frame = 0
        local path = X.top:sub(1, 1) == "/" and "" or "."
        for part in X.top:gmatch("[^/]+") do
            path = path .. "/" .. part
            if not Dir.exists(path) then Dir.make(path) end
        end
        X.active = Dir.exists(X.top) == true
        if not X.active then X.errors[1] = "cannot use output directory " .. top end
        return X.active
    end

    -- The dump of a packet's session (reserved at its first packet); nil for a later pass
    -- over packets already taken, false when the dump cannot be written.
    local function dump_of(frame, sess)
        if frame <= X.last_frame then return nil end
        X.last_frame = frame
        local d = X.by_session[sess]
        if d == nil then
            d = start(sess)
            X.by_session[sess] = d
        end
        return d
    end

    -- the key's length: the KDH's dumpkeysize, else what arrived
    local function key_length(d)
        if d.kdh_raw and files.kdh_dumpkeysize(d.kdh_raw) > 0 then return files.kdh_dumpkeysize(d.kdh_raw) end
        return d.key.max
    end

    local function whole(d)
        return d.kdh_raw ~= nil and d.finished and #files.gaps(d.vmcore, 0, vmcore_length(d)) == 0
            and #files.gaps(d.key, 0, key_length(d)) == 0
    end

    -- the frame that ends the dump: a whole dump takes nothing more (late copies)
    local function ended(d, rec)
        if rec.over and whole(d) then d.done = true end
    end

    -- An ACK or a malformed message (frame number, its record): no data, maybe a new dump.
    function X.packet(frame, rec)
        local d = rec.session and dump_of(frame, rec.session)
        if d then ended(d, rec) end
    end

    -- One message (frame number, its record, type, offset, payload bytes).
    function X.message(frame, rec, mtype, offset, payload)
        local d = dump_of(frame, rec.session)
        if not d or d.done then return end
        local n = #payload
        if mtype == 3 then
            local e = offset + n
            if n == 0 or e > files.MAX_DUMP_SIZE or (d.kdh_raw and e > vmcore_limit(d)) then return end
            files.add(d.vmcore, offset, e)
            write_at(d.vf, offset, payload)
            if e > d.size then d.size = e end
        elseif mtype == 5 then
            if offset + n > files.MAX_KEY then return end
            if d.kf == nil then
                d.key_part = string.format("%s/key.%s.%d.part", d.dir, d.host, d.index)
                d.kf = safe.create(d.key_part, "w+b") or false
                if not d.kf then X.errors[#X.errors + 1] = d.key_part .. " exists; key not written" end
            end
            if not d.kf then return end
            files.add(d.key, offset, offset + n)
            write_at(d.kf, offset, payload)
        elseif mtype == 4 then
            local raw = payload:sub(1, KDH_SIZE)
            d.blocks[#d.blocks + 1] = files.kdh_block(raw, bxor)
            if #raw == KDH_SIZE and raw ~= d.kdh_raw then
                d.kdh_raw = raw
                d.kdh_length_ok = files.kdh_dumplength(raw) <= files.MAX_DUMP_SIZE
            end
        elseif mtype == 2 then
            d.finished = true
        end
        ended(d, rec)
    end

    -- Copy the first ``len`` bytes of ``src`` to ``dst``, seeking over zeros (holes stay holes).
    local function sparse_copy(src, dst, len)
        local zero = string.rep("\0", COPY_CHUNK)
        src:seek("set", 0)
        local pos = 0
        while pos < len do
            local chunk = src:read(math.min(COPY_CHUNK, len - pos))
            if chunk == nil then break end
            if chunk ~= zero:sub(1, #chunk) then write_at(dst, pos, chunk) end
            pos = pos + #chunk
        end
        if len > 0 then write_at(dst, len - 1, src:seek("set", len - 1) and src:read(1) or "\0") end
    end

    local function kept(part, target)
        X.errors[#X.errors + 1] = target .. " exists; the data stays in " .. part
        return part
    end

    local function place(d, part, fh, name, len)
        local target = d.dir .. "/" .. name
        if len ~= nil and len < d.size then
            local out = safe.create(target)
            if out == nil then fh:close(); return kept(part, target) end
            sparse_copy(fh, out, len)
            out:close()
            fh:close()
            os.remove(part)
            return target
        end
        if len ~= nil and len > d.size then write_at(fh, len - 1, "\0") end
        fh:close()
        if not safe.rename(part, target) then return kept(part, target) end
        return target
    end

    -- the final text goes to info.<ip>.<N>.part, then takes the name (as extract does it)
    local function write_info(d, text)
        local tmp = d.info .. ".part"
        local f = safe.create(tmp)
        if f == nil then
            X.errors[#X.errors + 1] = tmp .. " exists; " .. d.info .. " keeps its first text"
            return
        end
        f:write(text)
        f:close()
        os.rename(tmp, d.info)
    end

    local function info_text(d, length)
        local t = { files.first_line(d.host) }
        for _, b in ipairs(d.blocks) do t[#t + 1] = b end
        local vgaps, kgaps = files.gaps(d.vmcore, 0, length), files.gaps(d.key, 0, key_length(d))
        if d.kdh_raw and d.finished and #vgaps == 0 and #kgaps == 0 then
            t[#t + 1] = files.STATUS_COMPLETE
            return table.concat(t)
        end
        t[#t + 1] = files.missing_lines(vgaps, "vmcore")
        t[#t + 1] = files.missing_lines(kgaps, "key")
        if d.kdh_raw == nil then t[#t + 1] = "  Missing: the kerneldumpheader (KDH) was not captured\n" end
        t[#t + 1] = d.finished and "Dump incomplete: the capture lacks part of the dump\n" or files.STATUS_TIMED_OUT
        return table.concat(t)
    end

    -- Finish every dump; returns the list of files written (paths under the top folder).
    function X.finish()
        local written = {}
        for _, d in ipairs(X.dumps) do
            local length = vmcore_length(d)
            local view = d.kdh_raw and files.server_view(d.kdh_raw) or { encrypted = false, suffix = "" }
            local name = string.format("%s.%s.%d%s", view.encrypted and "vmcore_encrypted" or "vmcore",
                d.host, d.index, view.suffix)
            written[#written + 1] = place(d, d.vmcore_part, d.vf, name, length)
            if d.kf then
                written[#written + 1] = place(d, d.key_part, d.kf, string.format("key.%s.%d", d.host, d.index), nil)
            end
            write_info(d, info_text(d, length))
            written[#written + 1] = d.info
        end
        X.active = false
        return written
    end

    -- The payload of a message as the dissector hands it over.
    function X.payload(tvb, caplen)
        if caplen <= HDR_LEN then return "" end
        return tvb:raw(HDR_LEN, caplen - HDR_LEN)
    end

    -- tshark -q -z fbsd_netdump,export,DIR
    function X.register()
        register_stat_cmd_arg("fbsd_netdump,export", function(arg)
            local dir = (arg or ""):match("^fbsd_netdump,export,(.+)$") or (arg or ""):match("^,?(.+)$")
            if dir == nil or dir == "" then error("fbsd_netdump: usage: -z fbsd_netdump,export,DIR") end
            X.begin(dir)
            local tap = Listener.new("frame", "fbsd_netdump")
            function tap.draw()
                if X.active then
                    local written = X.finish()
                    print(string.format("fbsd_netdump export: %d dump(s), %d file(s) under %s",
                        #X.dumps, #written, dir))
                end
                for _, e in ipairs(X.errors) do io.stderr:write("fbsd_netdump export: " .. e .. "\n") end
            end
            function tap.reset() end
            function tap.packet() end
        end)
    end

    return X
end
