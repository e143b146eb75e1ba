-- fbsd_netdump: where the export may write, told without lstat or O_EXCL (Lua has
-- neither), so that nothing lands outside the output folder and nothing is overwritten,
-- symbolic links included.  Two facts of rename(2) stand in for lstat:
--
--   rename(p, p) succeeds for any directory entry p (a dangling symlink included) and
--   fails with ENOENT when nothing is there: "something is at p";
--   rename("p/", "p/") succeeds when p is a real directory and fails (ENOTDIR) for a
--   symbolic link, even one to a directory (Linux resolves no link before the slash).
--
-- Where a system follows the link there, a second check still keeps writes inside: a
-- directory C of P is P's own child iff a probe file made in P is seen as P/C/../probe
-- (C/.. resolves physically).  The rule, as extract applies it with O_NOFOLLOW and
-- O_EXCL: every directory below the output folder is a real directory of its parent, and
-- every file (the .part names too) is created only where nothing is.  The output folder
-- itself is the user's choice and is used as given, a link included, as extract does.
-- What Lua cannot close is the moment between the check and the creation: another
-- process planting a link there and then is not caught (extract's O_EXCL would be).
--
-- Loaded by export.lua; returns the module table.

local M = {}

local ENOENT = 2

-- Something (a file, a folder, any symlink) is at ``path``; true too when it cannot be told.
function M.taken(path)
    local ok, _, code = os.rename(path, path)
    if ok then return true end
    return code ~= ENOENT
end

local probes = 0

-- A probe file made in ``parent`` is seen as ``parent/name/../probe``: the folder ``name``
-- resolves to a child of ``parent`` (true for a link to a sibling folder too).
function M.inside(parent, name)
    local probe
    repeat
        probes = probes + 1
        probe = string.format(".fbsd_netdump-probe-%d-%d", probes, math.random(1, 2 ^ 30))
    until not M.taken(parent .. "/" .. probe)
    local f = io.open(parent .. "/" .. probe, "wb")
    if f == nil then return false end
    f:close()
    local seen_as = parent .. "/" .. name .. "/../" .. probe
    local seen = os.rename(seen_as, seen_as) == true
    os.remove(parent .. "/" .. probe)
    return seen
end

-- ``parent .. "/" .. name`` is a real directory inside ``parent`` (itself checked).
function M.real_dir(parent, name)
    local path = parent .. "/" .. name
    return os.rename(path .. "/", path .. "/") == true and M.inside(parent, name)
end

-- Make (unless something is there) and check ``name`` in ``parent``; the path or nil.
function M.dir_in(parent, name)
    local path = parent .. "/" .. name
    if not M.taken(path) then Dir.make(path) end
    if M.real_dir(parent, name) then return path end
    return nil
end

-- A new file where nothing is; nil when something already is (or it cannot be made).
function M.create(path, mode)
    if M.taken(path) then return nil end
    return io.open(path, mode or "wb")
end

-- Give ``from`` the name ``to`` unless something is at ``to``: true when done.
function M.rename(from, to)
    if M.taken(to) then return false end
    return os.rename(from, to) == true
end

return M
