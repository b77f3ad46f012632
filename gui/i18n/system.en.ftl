# This laptop's clock and network (system_view.rs): at the foot of the sync view
system-title = This laptop's clock and network
sys-busy = Working…
sys-missing = { $tool } is not on this laptop (outside the Kazashi appliance, the clock and Wi-Fi are not set from here)
sys-denied = Not permitted (this laptop does not allow Kazashi to change the clock or the network)
sys-nm-down = The network manager (NetworkManager) is not running. Restart the laptop
sys-failed = Could not do it: { $why }
clock-now = Time now (Japan): { $time }
clock-manager-only = Only a manager may set the clock
clock-set = Set the clock
clock-help = Type the Japan time. Changing the clock keeps the records in order (hybrid logical clock). The change is on the audit record.
clock-date = Date (year-month-day)
clock-time = Time (hour:minute)
clock-check = Check
clock-bad-format = Type the date as 2026-12-06 and the time as 14:05 (no such date or time)
clock-out-of-range = Type a date from { $from } to { $to }
clock-after-purge = That time is past the purge date after the operation closed ({ $time }): this laptop's records would be purged. Not changed
clock-confirm-title = The clock will be changed as follows
clock-old = Clock now: { $time }
clock-new = New time: { $time }
clock-diff = Change: { $span }
clock-span = { $days ->
    [0] {""}
   *[other] { $days } d{" "}
}{ $hours ->
    [0] {""}
   *[other] { $hours } h{" "}
}{ $minutes } min
clock-large = A change of more than a day. Check the date again
clock-apply = Change the clock
clock-set-done = The clock is set to { $time }
clock-set-not-recorded = The clock changed, but the audit record could not be written: { $why }
net-unknown = Checking the network…
net-no-devices = No wired LAN and no Wi-Fi found
net-wired = Wired LAN
net-wifi = Wi-Fi
net-connected = connected
net-connecting = connecting…
net-disconnected = not connected
net-unavailable = unavailable (no cable, or the radio is off)
net-other = not managed
wifi-title = Wi-Fi networks
wifi-rescan = Scan again
wifi-none = No Wi-Fi network found. Scan again
wifi-no-device = This laptop has no Wi-Fi device (use the wired LAN)
wifi-not-found = That Wi-Fi network was not found (out of range, or renamed). Scan again
wifi-wrong-password = Wrong Wi-Fi password. Type it again
wifi-signal = signal { $signal }%
wifi-secured = secured ({ $kind })
wifi-open = open
wifi-in-use = connected
wifi-connect-to = Connect to "{ $ssid }"
wifi-password = Wi-Fi password
wifi-open-warning = An open network. Kazashi's traffic is encrypted, but check that this is the network to join
wifi-connect = Connect
wifi-password-length = A Wi-Fi password has 8 to 63 characters
wifi-connecting = Connecting to "{ $ssid }"…
wifi-connected = Connected to "{ $ssid }"
network-withheld = Kept but not counted: { $revoked } records of a revoked laptop, { $closed } stamped after the operation closed
update-installed = A new version is installed: restart at a quiet moment (every record is saved)
