# この端末の時計とネットワーク（system_view.rs）：同期画面の下
system-title = この端末の時計とネットワーク
sys-busy = 処理中…
sys-missing = このパソコンに { $tool } がありません（かざし専用機以外では、時計とWi-Fiはここから変えられません）
sys-denied = 許可されていません（このパソコンでは、かざしが時計やネットワークを変えることを許されていません）
sys-nm-down = ネットワークの管理（NetworkManager）が動いていません。再起動してください
sys-failed = できませんでした：{ $why }
clock-now = 現在時刻（日本時間）：{ $time }
clock-manager-only = 時計を合わせられるのは責任者だけです
clock-set = 時計を合わせる
clock-help = 日本時間で入力してください。時計を変えても記録の順序は保たれます（ハイブリッド論理時計）。変更は監査ログに残ります。
clock-date = 日付（年-月-日）
clock-time = 時刻（時:分）
clock-check = 確認へ
clock-bad-format = 日付は 2026-12-06、時刻は 14:05 のように入力してください（存在しない日付・時刻です）
clock-out-of-range = { $from }年から{ $to }年までの日付を入力してください
clock-after-purge = この時刻にすると、運営終了後の消去日（{ $time }）を過ぎ、この端末の記録が消去されます。変更できません
clock-confirm-title = 時計を次のとおり変更します
clock-old = 今の時計：{ $time }
clock-new = 新しい時刻：{ $time }
clock-diff = 差：{ $span }
clock-span = { $days ->
    [0] {""}
   *[other] { $days }日
}{ $hours ->
    [0] {""}
   *[other] { $hours }時間
}{ $minutes }分
clock-large = 1日以上の変更です。日付をもう一度確かめてください
clock-apply = 時計を変更する
clock-set-done = 時計を { $time } に合わせました
clock-set-not-recorded = 時計は変わりましたが、監査ログに記録できませんでした：{ $why }
net-unknown = ネットワークの状態を確認しています…
net-no-devices = 有線LANもWi-Fiも見つかりません
net-wired = 有線LAN
net-wifi = Wi-Fi
net-connected = 接続済み
net-connecting = 接続中…
net-disconnected = 未接続
net-unavailable = 使えません（ケーブルが抜けているか、電波がオフです）
net-other = 管理外
wifi-title = Wi-Fiネットワーク
wifi-rescan = 再検索
wifi-none = Wi-Fiネットワークが見つかりません。再検索してください
wifi-no-device = このパソコンにWi-Fiの機器がありません（有線LANを使ってください）
wifi-not-found = そのWi-Fiネットワークが見つかりません（電波が届かないか、名前が変わりました）。再検索してください
wifi-wrong-password = Wi-Fiのパスワードが違います。もう一度入力してください
wifi-signal = 電波 { $signal }%
wifi-secured = 鍵あり（{ $kind }）
wifi-open = 鍵なし
wifi-in-use = 接続中
wifi-connect-to = 「{ $ssid }」に接続
wifi-password = Wi-Fiのパスワード
wifi-open-warning = 鍵のないネットワークです。かざしの通信は暗号化されますが、接続してよいか確かめてください
wifi-connect = 接続する
wifi-password-length = Wi-Fiのパスワードは8〜63文字です
wifi-connecting = 「{ $ssid }」に接続しています…
wifi-connected = 「{ $ssid }」に接続しました
network-withheld = 保管のみ・集計外: 失効した端末の記録 { $revoked }件、運用終了後の記録 { $closed }件
update-installed = 新しい版が入りました。区切りのよいところで再起動してください（記録は保存済みです）
