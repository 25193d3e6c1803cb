-- wirelab.lua: a Wireshark/tshark dissector for the wirelab frame protocol v1 (native-notes/wire-formats.md).
--
--   0       1       2               4                               8                              12
--   +-------+-------+---------------+-------------------------------+-------------------------------+
--   |version| type  |     flags     |              id               |            length             |
--   +-------+-------+---------------+-------------------------------+-------------------------------+
--   |                                 payload (length bytes) ...
--
-- Load it for one run:   tshark -X lua_script:native-notes/wireshark/wirelab.lua -d tcp.port==PORT,wirelab -r f.pcap
-- or for good: copy it to the personal Lua plugins folder (~/.local/lib/wireshark/plugins/).
-- Works on Wireshark/tshark 4.0 (Debian 12) and newer: only API present since 3.x is used.
--
-- Frames split across TCP segments, and several frames in one segment, are handled by dissect_tcp_pdus
-- (TCP reassembly). A protocol violation (bad version, unknown type, length over the limit) is an
-- expert-info error; like the lab's server, the dissector does not try to resynchronise after one: the
-- rest of that direction of the stream is shown as undecoded bytes.

local wirelab = Proto("wirelab", "wirelab frame protocol")

local HEADER_SIZE = 12
local FRAME_VERSION = 1

local TYPES = {
  [1] = "REQUEST", [2] = "RESPONSE", [3] = "ERROR", [4] = "PUSH",
  [5] = "PING", [6] = "PONG", [7] = "CANCEL",
}
local ERROR_CODES = {
  [1] = "bad version", [2] = "unknown type", [3] = "frame too large", [4] = "bad request",
  [5] = "timeout", [6] = "cancelled", [7] = "duplicate id", [100] = "application error",
}

local f = {
  version = ProtoField.uint8("wirelab.version", "Version", base.DEC),
  type = ProtoField.uint8("wirelab.type", "Type", base.DEC, TYPES),
  flags = ProtoField.uint16("wirelab.flags", "Flags", base.HEX),
  id = ProtoField.uint32("wirelab.id", "Id", base.DEC),
  length = ProtoField.uint32("wirelab.length", "Length", base.DEC),
  method = ProtoField.string("wirelab.method", "Method"),
  body = ProtoField.bytes("wirelab.body", "Body"),
  error_code = ProtoField.uint16("wirelab.error_code", "Error code", base.DEC, ERROR_CODES),
  error_message = ProtoField.string("wirelab.error_message", "Error message"),
  payload = ProtoField.bytes("wirelab.payload", "Payload"),
  undecoded = ProtoField.bytes("wirelab.undecoded", "Bytes after a protocol violation (not decoded)"),
}
wirelab.fields = { f.version, f.type, f.flags, f.id, f.length, f.method, f.body, f.error_code, f.error_message, f.payload, f.undecoded }

local ex = {
  bad_version = ProtoExpert.new("wirelab.bad_version", "Bad frame version", expert.group.PROTOCOL, expert.severity.ERROR),
  unknown_type = ProtoExpert.new("wirelab.unknown_type", "Unknown frame type", expert.group.PROTOCOL, expert.severity.ERROR),
  too_large = ProtoExpert.new("wirelab.too_large", "Frame length over the limit", expert.group.PROTOCOL, expert.severity.ERROR),
  after_error = ProtoExpert.new("wirelab.after_error", "Bytes after a protocol violation", expert.group.PROTOCOL, expert.severity.WARN),
  short_error = ProtoExpert.new("wirelab.short_error", "ERROR payload without a u16 code", expert.group.MALFORMED, expert.severity.ERROR),
  incomplete = ProtoExpert.new("wirelab.incomplete", "Part of a frame (TCP reassembly is off, or the capture starts mid-frame)", expert.group.REASSEMBLE, expert.severity.NOTE),
}
wirelab.experts = { ex.bad_version, ex.unknown_type, ex.too_large, ex.after_error, ex.short_error, ex.incomplete }

wirelab.prefs.tcp_port = Pref.uint("TCP port", 7070, "The port wirelab is decoded on by default (Decode As works for any other)")
wirelab.prefs.max_payload = Pref.uint("Maximum payload", 1048576, "Longer frames are a protocol violation (the lab's --max-payload)")
wirelab.prefs.heuristic = Pref.bool("Detect on any TCP port", true, "Recognise a stream that starts with a valid v1 header on any port")

local tcp_stream = Field.new("tcp.stream")

-- Directions of TCP streams that broke the protocol, keyed "stream:srcport", valued by the frame number
-- of the violation. Later packets of that direction are not decoded as frames (no resynchronisation).
local failed = {}

local function direction_key(pinfo)
  local s = tcp_stream()
  if not s then return nil end
  return tostring(s.value) .. ":" .. tostring(pinfo.src_port)
end

-- The first violation in a header at offset, or nil. Only bytes present are checked.
local function violation(tvb, offset)
  local avail = tvb:len() - offset
  if avail >= 1 and tvb(offset, 1):uint() ~= FRAME_VERSION then return "version" end
  if avail >= 2 and TYPES[tvb(offset + 1, 1):uint()] == nil then return "type" end
  if avail >= HEADER_SIZE and tvb(offset + 8, 4):uint() > wirelab.prefs.max_payload then return "length" end
  return nil
end

local function frame_len(tvb, pinfo, offset)
  local key = direction_key(pinfo)
  if (key and failed[key] and pinfo.number > failed[key]) or violation(tvb, offset) then
    -- Consume the rest of the segment: framing can no longer be trusted.
    return tvb:len() - offset
  end
  return HEADER_SIZE + tvb(offset + 8, 4):uint()
end

local function add_info(pinfo, text)
  local info = tostring(pinfo.cols.info)
  if info == "" then pinfo.cols.info:set(text) else pinfo.cols.info:append(", " .. text) end
end

local function dissect_frame(tvb, pinfo, root)
  pinfo.cols.protocol:set("WIRELAB")
  local key = direction_key(pinfo)
  if key and failed[key] and pinfo.number > failed[key] then
    local t = root:add(wirelab, tvb(), "wirelab (after a protocol violation)")
    t:add(f.undecoded, tvb())
    t:add_proto_expert_info(ex.after_error, "Not decoded: this direction broke the protocol in frame " .. failed[key])
    add_info(pinfo, "[not decoded after protocol violation]")
    return tvb:len()
  end

  local bad = violation(tvb, 0)
  local tree = root:add(wirelab, tvb())
  tree:add(f.version, tvb(0, 1))
  if tvb:len() >= 2 then tree:add(f.type, tvb(1, 1)) end
  if bad then
    if key and (failed[key] == nil or pinfo.number < failed[key]) then failed[key] = pinfo.number end
    if tvb:len() >= 4 then tree:add(f.flags, tvb(2, 2)) end
    if tvb:len() >= 8 then tree:add(f.id, tvb(4, 4)) end
    if tvb:len() >= 12 then tree:add(f.length, tvb(8, 4)) end
    if bad == "version" then
      tree:add_proto_expert_info(ex.bad_version, "Bad frame version " .. tvb(0, 1):uint() .. " (expected 1)")
      add_info(pinfo, "BAD VERSION " .. tvb(0, 1):uint())
    elseif bad == "type" then
      tree:add_proto_expert_info(ex.unknown_type, "Unknown frame type " .. tvb(1, 1):uint())
      add_info(pinfo, "UNKNOWN TYPE " .. tvb(1, 1):uint())
    else
      tree:add_proto_expert_info(ex.too_large, "Length " .. tvb(8, 4):uint() .. " over the limit of " .. wirelab.prefs.max_payload)
      add_info(pinfo, "FRAME TOO LARGE")
    end
    if tvb:len() > HEADER_SIZE then tree:add(f.undecoded, tvb(HEADER_SIZE)) end
    return tvb:len()
  end

  if tvb:len() < HEADER_SIZE or tvb:len() < HEADER_SIZE + tvb(8, 4):uint() then
    -- Only reached when TCP could not reassemble (tcp.desegment_tcp_streams off): show what is here.
    tree:add_proto_expert_info(ex.incomplete)
    add_info(pinfo, "[part of a frame]")
    return tvb:len()
  end
  local ftype = tvb(1, 1):uint()
  local id = tvb(4, 4):uint()
  local length = tvb(8, 4):uint()
  tree:add(f.flags, tvb(2, 2))
  tree:add(f.id, tvb(4, 4))
  tree:add(f.length, tvb(8, 4))
  local label = TYPES[ftype] .. " id=" .. id
  if length > 0 then
    local p = tvb(HEADER_SIZE, length)
    local pt = tree:add(f.payload, p)
    if ftype == 1 then
      -- REQUEST: method SP body; no space means a method with an empty body.
      local bytes = p:bytes()
      local sp = nil
      for i = 0, bytes:len() - 1 do
        if bytes:get_index(i) == 0x20 then sp = i; break end
      end
      local mlen = sp or length
      if mlen > 0 then
        pt:add(f.method, tvb(HEADER_SIZE, mlen))
        label = label .. " " .. tvb(HEADER_SIZE, mlen):string()
      end
      if sp and length > sp + 1 then pt:add(f.body, tvb(HEADER_SIZE + sp + 1, length - sp - 1)) end
    elseif ftype == 3 then
      if length >= 2 then
        pt:add(f.error_code, tvb(HEADER_SIZE, 2))
        label = label .. " code=" .. tvb(HEADER_SIZE, 2):uint()
        if length > 2 then pt:add(f.error_message, tvb(HEADER_SIZE + 2, length - 2)) end
      else
        pt:add_proto_expert_info(ex.short_error)
      end
    end
  elseif ftype == 1 then
    tree:add_proto_expert_info(ex.short_error, "REQUEST without a method")
  elseif ftype == 3 then
    tree:add_proto_expert_info(ex.short_error)
  end
  tree:append_text(", " .. label)
  add_info(pinfo, label)
  return HEADER_SIZE + length
end

local function dissect(tvb, pinfo, tree)
  -- At most 1 byte is needed to reject a bad version; a valid frame's length is known at 12 bytes.
  if tvb:len() < HEADER_SIZE and violation(tvb, 0) == nil then
    pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
    pinfo.desegment_offset = 0
    return
  end
  dissect_tcp_pdus(tvb, tree, HEADER_SIZE, frame_len, dissect_frame, true)
  return tvb:len()
end
wirelab.dissector = dissect

-- A stream whose first bytes are a valid v1 header with zero flags: wirelab on whatever port.
local function heuristic(tvb, pinfo, tree)
  if not wirelab.prefs.heuristic or tvb:len() < HEADER_SIZE then return false end
  if violation(tvb, 0) ~= nil or tvb(2, 2):uint() ~= 0 then return false end
  -- The rest of this TCP conversation is wirelab too, including segments that start mid-frame.
  pinfo.conversation = wirelab
  -- Call the Lua function itself: wirelab.dissector read back is a Dissector handle, and calling a
  -- handle spends one level of pinfo.can_desegment, which leaves none for dissect_tcp_pdus here.
  dissect(tvb, pinfo, tree)
  return true
end

local tcp_port = DissectorTable.get("tcp.port")
tcp_port:add(wirelab.prefs.tcp_port, wirelab)
tcp_port:add_for_decode_as(wirelab)
wirelab:register_heuristic("tcp", heuristic)

local registered_port = wirelab.prefs.tcp_port
function wirelab.prefs_changed()
  if registered_port ~= wirelab.prefs.tcp_port then
    tcp_port:remove(registered_port, wirelab)
    registered_port = wirelab.prefs.tcp_port
    tcp_port:add(registered_port, wirelab)
  end
end
