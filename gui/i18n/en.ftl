# The station window, in English. Every id here must exist in ja.ftl too.
app-title = Kazashi — Reception
present-count = { $count } present
lang-switch = 日本語
tap-prompt = Please hold the card over the reader
search-label = Search by name, reading, birth date or address
search-hint = e.g. やまだ たろう 1980-02-29
search-none = No one found
pin-title = Enter the PIN
pin-label = PIN (4 digits)
pin-ok = OK
cancel = Cancel
household-title = Household check-in
household-hint = Tick everyone who is entering
confirm-checkin = Check in
checked-in = Checked in { $count } { $count ->
    [one] person
   *[other] people
}
already-present = Already present
candidates-title = Choose from the candidates (the card does not match exactly)
not-found = Not on the roster. Search by hand, or register as a walk-in
demo-cards = Simulated cards (demo)
demo-tap = Tap: { $who }
demo-wrong-pin = Resident who mistypes the PIN
demo-locked = Locked card
demo-pin-hint = The demo PIN is 1234
card-bound = Card registered: from now on, a tap alone checks them in
revocation = Offline: the certificate's revocation cannot be checked
