"""Hostile values by PostgreSQL type, as a gateway, a clock reset or a careless export would
write them into a CSV cell. Whether PostgreSQL accepts each one is not written here: the fuzz
test asks PostgreSQL itself (a COPY of the same line into a clone of the Bronze table), so
these pools only have to be awkward, not labelled."""

from __future__ import annotations

BIGINT = (
    "0", "-1", "+7", " 7 ", "007", "9223372036854775807", "-9223372036854775808",
    "9223372036854775808", "-9223372036854775809", "99999999999999999999", "1.0", "1e3",
    "0x10", "1_000", "NaN", "true", "\u0663",  # ARABIC-INDIC DIGIT THREE
)

DOUBLE = (
    "0", "-0", "1.5", ".5", "5.", "+3", " 2.5 ", "1e308", "1.7976931348623157e308",
    "1.8e308", "1e400", "-1e400", "1e-400", "4.9e-324", "2.2250738585072014e-308", "NaN",
    "nan", "Infinity", "-Infinity", "inf", "-inf", "0x10", "1,5", "1e", "e5", "1_0",
)

TIMESTAMPTZ = (
    "2026-12-05T10:40:00Z", "2026-12-05 10:40:00+14", "2026-12-05 10:40:00-12:00",
    "2026-12-05", "0001-01-01T00:00:00Z", "1900-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
    "10000-01-01T00:00:00Z", "294276-12-31 23:59:59Z", "294277-01-01 00:00:00Z",
    "4714-11-24 00:00:00+00 BC", "4714-11-23 00:00:00+00 BC", "infinity", "-infinity",
    "epoch", "0000-01-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-12-05T24:00:00Z",
    "2026-12-05T10:40:60Z", "1481374800", "2026-13-01T00:00:00Z",
)

TEXT = (
    "A1", " ", "NULL", "\\N", "a,b", 'a"b', '"', "'; drop table bronze.alarms; --",
    "x\ny", "x\r\ny", "\t", "\u00e9", "\u65e5\u672c\u8a9e", "\U0001f469\u200d\U0001f527",
    "\u03a9\u200b", "\u202eRTL", "a\\b", "x" * 256, "x" * 257, "\u00e9" * 300,
    "x" * 5000, "\u00e9" * 3000, "y" * 100_000,
    "\x00",  # NUL: PostgreSQL text cannot hold it
    "\udcff",  # written as the raw byte 0xff (surrogateescape): not UTF-8
    "\udced\udca0\udc80",  # a UTF-16 surrogate encoded as UTF-8 (CESU): not UTF-8 either
)

BY_TYPE = {
    "bigint": BIGINT,
    "double precision": DOUBLE,
    "timestamptz": TIMESTAMPTZ,
    "text": TEXT,
}

# A row every table accepts, column by column; the fuzz test varies one cell at a time.
GOOD = {
    "time": "2026-12-05T10:40:00Z",
    "machine_id": "8",
    "device_id": "5",
    "state": "RUNNING",
    "program_name": "O1001",
    "cycle_start": "2026-12-05T10:39:00Z",
    "part_count": "12",
    "result": "GOOD",
    "std_cycle_seconds": "50",
    "std_load_unload_seconds": "10",
    "down_threshold_seconds": "120",
    "spindle_speed_rpm": "8000",
    "feed_rate_mm_min": "20",
    "spindle_load_pct": "40",
    "spindle_temp_c": "30",
    "motor_temp_c": "35",
    "coolant_temp_c": "22",
    "power_kw": "5.5",
    "energy_kwh": "1200",
    "alarm_code": "A1",
    "severity": "error",
    "message": "door open",
    "event": "RAISED",
    "device_serial": "SN-1",
    "value": "3.5",
    "unit": "mm",
    "firmware": "1.0",
    "down_start": "2026-12-05T10:30:00Z",
    "reason_code": "BREAK",
}
