-- fbsd_netdump: the kerneldumpheader (KDH) and EKCD key subtrees.
-- Loaded by netdump.lua; returns dissect_kdh, dissect_ekcd and kdh_host.

local HDR_LEN = 24

return function(F, E, bxor, add_gen)
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
        add_gen(sub, F.kdh_parity_xor, tvbr, acc)
        add_gen(sub, F.kdh_parity_ok, tvbr, acc == 0)
        if acc ~= 0 then
            add_gen(sub, F.bad_parity, tvbr, true)
            pitem:add_proto_expert_info(E.bad_parity)
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

    -- The host name for the Info column without building a tree.
    local function kdh_host(tvb)
        local version = tvb(HDR_LEN + 32, 4):uint()
        local layout = KDH_LAYOUTS[version] or KDH_LAYOUTS[4]
        for _, d in ipairs(layout) do
            if d[1] == F.kdh_hostname then return tvb(HDR_LEN + d[2], d[3]):stringz() end
        end
    end

    return dissect_kdh, dissect_ekcd, kdh_host
end
