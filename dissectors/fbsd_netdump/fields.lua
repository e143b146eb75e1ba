-- fbsd_netdump: the protocol fields, their deprecated aliases and the expert items.
-- Loaded by netdump.lua with the Proto object; returns F (fields), OLD (aliases) and E.
-- Expert summaries are fixed strings (Expert Information groups them by text); numbers
-- live in fields.

local TYPE_NAMES = { [1] = "HERALD", [2] = "FINISHED", [3] = "VMCORE", [4] = "KDH", [5] = "EKCD_KEY" }
local COMPRESSION_NAMES = { [0] = "none", [1] = "gzip", [2] = "zstd" }
local ENCRYPTION_NAMES = { [1] = "AES-256-CBC", [2] = "ChaCha20" }

return function(p)
    local PF = ProtoField
    local A = "fbsd_netdump.analysis."
    local F = {
        -- header
        type = PF.uint32("fbsd_netdump.type", "Type", base.DEC, TYPE_NAMES),
        seqno = PF.uint32("fbsd_netdump.seqno", "Sequence number", base.DEC),
        offset = PF.uint64("fbsd_netdump.offset", "Offset", base.DEC),
        length = PF.uint32("fbsd_netdump.length", "Payload length", base.DEC),
        aux2 = PF.uint32("fbsd_netdump.aux2", "Aux2", base.HEX),
        payload = PF.bytes("fbsd_netdump.payload", "Payload"),
        ack_seqno = PF.uint32("fbsd_netdump.ack.seqno", "Acknowledged sequence number", base.DEC),
        path = PF.string("fbsd_netdump.herald.path", "Dump path"),
        -- KDH
        kdh = PF.none("fbsd_netdump.kdh", "Kernel dump header"),
        kdh_magic = PF.string("fbsd_netdump.kdh.magic", "Magic"),
        kdh_arch = PF.string("fbsd_netdump.kdh.architecture", "Architecture"),
        kdh_version = PF.uint32("fbsd_netdump.kdh.version", "Version", base.DEC),
        kdh_archver = PF.uint32("fbsd_netdump.kdh.architectureversion", "Architecture version", base.DEC),
        kdh_dumplength = PF.uint64("fbsd_netdump.kdh.dumplength", "Dump length", base.DEC),
        kdh_dumptime = PF.absolute_time("fbsd_netdump.kdh.dumptime", "Dump time", base.UTC),
        kdh_dumpkeysize = PF.uint32("fbsd_netdump.kdh.dumpkeysize", "Dump key size", base.DEC),
        kdh_blocksize = PF.uint32("fbsd_netdump.kdh.blocksize", "Block size", base.DEC),
        kdh_hostname = PF.string("fbsd_netdump.kdh.hostname", "Host name"),
        kdh_versionstring = PF.string("fbsd_netdump.kdh.versionstring", "Version string"),
        kdh_panicstring = PF.string("fbsd_netdump.kdh.panicstring", "Panic string"),
        kdh_compression = PF.uint8("fbsd_netdump.kdh.compression", "Compression", base.DEC, COMPRESSION_NAMES),
        kdh_dumpextent = PF.uint64("fbsd_netdump.kdh.dumpextent", "Dump extent", base.DEC),
        kdh_parity = PF.uint32("fbsd_netdump.kdh.parity", "Parity", base.HEX),
        kdh_parity_xor = PF.uint32("fbsd_netdump.kdh.parity_xor", "XOR of all 128 words", base.HEX),
        kdh_parity_ok = PF.bool("fbsd_netdump.kdh.parity_ok", "Parity OK"),
        bad_parity = PF.bool("fbsd_netdump.kdh.bad_parity", "Bad KDH parity"),
        -- EKCD key
        ekcd_encryption = PF.uint8("fbsd_netdump.ekcd.encryption", "Encryption", base.DEC, ENCRYPTION_NAMES),
        ekcd_iv = PF.bytes("fbsd_netdump.ekcd.iv", "IV"),
        ekcd_keysize = PF.uint32("fbsd_netdump.ekcd.encryptedkeysize", "Encrypted key size", base.DEC),
        ekcd_key = PF.bytes("fbsd_netdump.ekcd.encryptedkey", "Encrypted key"),
        -- session
        session = PF.uint32("fbsd_netdump.session", "Dump (session) number", base.DEC),
        client = PF.ipv4("fbsd_netdump.client", "Client"),
        -- malformed datagrams
        runt = PF.bool("fbsd_netdump.runt", "Runt"),
        bad_length = PF.bool("fbsd_netdump.bad_length", "Length mismatch"),
        jumbo = PF.bool("fbsd_netdump.jumbo", "Payload above 4096 bytes"),
        unsafe_path = PF.bool("fbsd_netdump.herald.unsafe_path", "Unsafe HERALD path"),
        -- sequence analysis
        flags = PF.none(A .. "flags", "Sequence analysis: problems"),
        retransmission = PF.bool(A .. "retransmission", "Retransmission"),
        needed = PF.bool(A .. "needed_retransmission", "Needed retransmission (no ACK captured before it)"),
        spurious = PF.bool(A .. "spurious_retransmission", "Spurious retransmission (the ACK was already captured)"),
        hidden = PF.bool(A .. "hidden_retransmission", "Retransmission whose earlier copies were not captured"),
        network_duplicate = PF.bool(A .. "network_duplicate", "Network duplicate (a second copy, not a resend)"),
        capture_duplicate = PF.bool(A .. "capture_duplicate", "Capture duplicate (same bytes, same timestamp)"),
        out_of_order = PF.bool(A .. "out_of_order", "Out of order"),
        conflict = PF.bool(A .. "conflict", "Copy differs from the previous copy"),
        seq_gap = PF.bool(A .. "seq_gap", "Seqnos before this message were never captured"),
        seq_gap_missing = PF.uint32(A .. "seq_gap_missing", "Seqnos never captured before this message", base.DEC),
        duplicate_ack = PF.bool(A .. "duplicate_ack", "Duplicate ACK"),
        dup_ack_num = PF.uint32(A .. "duplicate_ack_num", "Duplicate ACK number", base.DEC),
        ack_unseen = PF.bool(A .. "ack_unseen", "ACK for a message not captured"),
        unacked = PF.bool(A .. "unacked", "Never acknowledged in this capture"),
        new_dump = PF.bool(A .. "new_dump", "HERALD after data or a FINISHED: a new dump"),
        -- links and timing
        acked_in = PF.framenum(A .. "acked_in", "Acknowledged in frame", base.NONE, frametype.ACK),
        acks_frame = PF.framenum(A .. "acks_frame", "This ACKs the message in frame", base.NONE, frametype.REQUEST),
        ack_rtt = PF.relative_time(A .. "ack_rtt", "Time from the message to this ACK"),
        first_copy = PF.framenum(A .. "first_copy", "First captured copy in frame", base.NONE, frametype.RETRANS_PREV),
        previous_copy = PF.framenum(A .. "previous_copy", "Previous copy in frame (when not the first)", base.NONE, frametype.RETRANS_PREV),
        next_copy = PF.framenum(A .. "next_copy", "Next copy in frame", base.NONE, frametype.RETRANS_NEXT),
        dup_ack_of = PF.framenum(A .. "duplicate_ack_of", "Duplicate of the ACK in frame", base.NONE, frametype.DUP_ACK),
        capture_duplicate_of = PF.framenum(A .. "capture_duplicate_of", "Capture duplicate of frame", base.NONE, frametype.NONE),
        prev_session = PF.uint32(A .. "previous_dump", "Dump this HERALD ends", base.DEC),
    }

    -- The names of the previous release, kept (hidden, same values) for one release.
    local OLD = {
        retransmission = PF.bool("fbsd_netdump.retransmission", "Retransmission (old name)"),
        spurious = PF.bool("fbsd_netdump.spurious_retransmission", "Spurious retransmission (old name)"),
        duplicate_ack = PF.bool("fbsd_netdump.duplicate_ack", "Duplicate ACK (old name)"),
        ack_unseen = PF.bool("fbsd_netdump.ack_unseen", "ACK for an unseen message (old name)"),
        unacked = PF.bool("fbsd_netdump.unacked", "Never acknowledged (old name)"),
        conflict = PF.bool("fbsd_netdump.conflict", "Conflicting retransmission (old name)"),
        seq_gap = PF.bool("fbsd_netdump.seq_gap", "Sequence gap (old name)"),
        seq_gap_missing = PF.uint32("fbsd_netdump.seq_gap_missing", "Seqnos missing (old name)", base.DEC),
        new_dump = PF.bool("fbsd_netdump.new_dump", "New dump (old name)"),
        capture_duplicate = PF.bool("fbsd_netdump.capture_duplicate", "Capture duplicate (old name)"),
        ack_frame = PF.framenum("fbsd_netdump.ack_frame", "Acked in frame (old name)", base.NONE, frametype.NONE),
        acked_frame = PF.framenum("fbsd_netdump.acked_frame", "ACK of the message in frame (old name)", base.NONE, frametype.NONE),
        ack_rtt = PF.relative_time("fbsd_netdump.ack_rtt", "Time to ACK (old name, on both sides)"),
        retransmission_of = PF.framenum("fbsd_netdump.retransmission_of", "First copy in frame (old name)", base.NONE, frametype.NONE),
        prev_transmission = PF.framenum("fbsd_netdump.prev_transmission", "Previous copy in frame (old name)", base.NONE, frametype.NONE),
        next_transmission = PF.framenum("fbsd_netdump.next_transmission", "Next copy in frame (old name)", base.NONE, frametype.NONE),
        dup_ack_of = PF.framenum("fbsd_netdump.dup_ack_of", "Duplicate of the ACK in frame (old name)", base.NONE, frametype.NONE),
        dup_ack_num = PF.uint32("fbsd_netdump.dup_ack_num", "Duplicate ACK number (old name)", base.DEC),
        capture_duplicate_of = PF.framenum("fbsd_netdump.capture_duplicate_of", "Capture duplicate of frame (old name)", base.NONE, frametype.NONE),
    }

    local list = {}
    for _, f in pairs(F) do list[#list + 1] = f end
    for _, f in pairs(OLD) do list[#list + 1] = f end
    p.fields = list

    local SEQ, MALF = expert.group.SEQUENCE, expert.group.MALFORMED
    local S = expert.severity
    local PE = ProtoExpert.new
    local X = "fbsd_netdump.expert."
    local E = {
        needed = PE(X .. "retransmission", "Retransmission: no ACK captured before it", SEQ, S.NOTE),
        spurious = PE(X .. "spurious_retransmission", "Spurious retransmission: the ACK was already captured", SEQ, S.NOTE),
        hidden = PE(X .. "hidden_retransmission", "Retransmission: the earlier copies were not captured (told by timing)", SEQ, S.NOTE),
        network_duplicate = PE(X .. "network_duplicate", "Network duplicate: a second copy right behind the first, not a resend", SEQ, S.NOTE),
        capture_duplicate = PE(X .. "capture_duplicate", "Capture duplicate (same bytes, same timestamp), not a retransmission", SEQ, S.CHAT),
        out_of_order = PE(X .. "out_of_order", "Out of order: arrived after a higher seqno of its burst", SEQ, S.NOTE),
        seq_gap = PE(X .. "seq_gap", "Sequence gap: seqnos before this message were never captured", SEQ, S.WARN),
        conflict = PE(X .. "conflict", "Copy differs from the previous copy", SEQ, S.WARN),
        duplicate_ack = PE(X .. "duplicate_ack", "Duplicate ACK", SEQ, S.NOTE),
        ack_unseen = PE(X .. "ack_unseen", "ACK for a message not captured", SEQ, S.WARN),
        unacked = PE(X .. "unacked", "Message never acknowledged in this capture", SEQ, S.WARN),
        new_dump = PE(X .. "new_dump", "HERALD after data or a FINISHED: a new dump starts", SEQ, S.NOTE),
        runt = PE(X .. "runt", "Runt: shorter than the 24-byte header", MALF, S.ERROR),
        bad_length = PE(X .. "bad_length", "Length mismatch: 24 + mh_len differs from the UDP payload length", MALF, S.ERROR),
        bad_ack = PE(X .. "bad_ack", "Datagram to the client port is not a 4-byte ACK", MALF, S.WARN),
        unknown_type = PE(X .. "unknown_type", "Unknown message type", expert.group.PROTOCOL, S.WARN),
        jumbo = PE(X .. "jumbo", "Payload above the largest accepted size: netdumpd will not accept it", expert.group.PROTOCOL, S.WARN),
        bad_parity = PE(X .. "bad_parity", "Kernel dump header parity check failed", expert.group.CHECKSUM, S.WARN),
        unsafe_path = PE(X .. "unsafe_path", "HERALD path is absolute or contains ..", expert.group.SECURITY, S.WARN),
    }
    local experts = {}
    for _, e in pairs(E) do experts[#experts + 1] = e end
    p.experts = experts
    return F, OLD, E, TYPE_NAMES
end
