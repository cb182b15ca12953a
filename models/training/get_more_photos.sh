#!/usr/bin/env bash
# Re-obtain MORE sharp, all-in-focus real PHOTOGRAPHS shipped in Debian 12 (bookworm) packages,
# in addition to the 11 taken by ../shared/data/get_debian_photos.sh (none of those is repeated here).
# Every candidate image of the wallpaper/background packages was looked at; renders, illustrations,
# paintings, shallow-depth-of-field macros, fog/long-exposure shots and images < 1600 px wide were left out.
# Usage: bash models/training/get_more_photos.sh [OUT_DIR]     (default models/work/more_photos)
# Needs: apt (Debian 12), python3 with opencv-python-headless ($PYTHON overrides python3).
# Output: OUT_DIR/<name>.jpg (at most 1920 wide, INTER_AREA, JPEG q92) + COPYRIGHT.<package> per package.
set -euo pipefail
OUT="${1:-models/work/more_photos}"; PY="${PYTHON:-python3}"
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT"
# Package versions these files were checked in (Debian 12):
#   lomiri-wallpapers-16.04 20.04.0-2, plasma-workspace-wallpapers 4:5.27.5-2, lxqt-themes 1.2.0-1,
#   sddm-theme-maldives 0.19.0-5, enlightenment-data 0.25.4-2
PKGS=(lomiri-wallpapers-16.04 plasma-workspace-wallpapers lxqt-themes sddm-theme-maldives enlightenment-data)
( cd "$TMP" && apt-get download "${PKGS[@]}" )
for d in "$TMP"/*.deb; do dpkg-deb -x "$d" "$TMP/x"; done
B="$TMP/x/usr/share"
# "source path under /usr/share|output name"; licence = what the package's debian/copyright says.
FILES=(
 # lomiri-wallpapers-16.04 20.04.0-2
 "backgrounds/Picture_0B_by_freespace.jpg|Picture_0B_by_freespace"          # CC-BY-4.0 (Trevor "Freespace" 2018), fig in bowl on concrete, top-down, 2572x1740
 # plasma-workspace-wallpapers 4:5.27.5-2 (debian/copyright: GPL-2+ for all; metadata.json: LGPLv3)
 "wallpapers/ColorfulCups/contents/images/2560x1600.jpg|ColorfulCups_2560x1600" # GPL-2+/LGPLv3 (Dmitri Popov), cups from above, 2560x1600
 "wallpapers/Grey/contents/images/2560x1600.jpg|Grey_2560x1600"                 # GPL-2+/LGPLv3 (Sigi Sagi), B&W facade, 2560x1600
 # lxqt-themes 1.2.0-1 (debian/copyright Files: *, LXQt team)
 "lxqt/wallpapers/this-is-not-windows.jpg|lxqt_this-is-not-windows"   # LGPL-2.1+, green hills + field, 2048x1536
 "lxqt/wallpapers/after-the-rain.jpg|lxqt_after-the-rain"             # LGPL-2.1+, clouds over hills at dusk, 3000x1993
 "lxqt/wallpapers/Valendas.png|lxqt_Valendas"                         # LGPL-2.1+, alpine peaks, hazy, 1920x1277
 # sddm-theme-maldives 0.19.0-5
 "sddm/themes/maldives/background.jpg|maldives_jetty"                 # CC-BY-3.0 (2008 Nevit Dilmen, Wikimedia Commons), jetty + trees, 2592x1754
 # enlightenment-data 0.25.4-2: backgrounds are Edje files; the largest embedded JPEG is taken (see below)
 "enlightenment/data/backgrounds/Snow-Trees.edj|e_Snow-Trees"         # BSD-2-clause (Carsten Haitzler and contributors), aerial birches on snow, 3840x2160
 "enlightenment/data/backgrounds/Sea-of-Lanterns.edj|e_Sea-of-Lanterns" # BSD-2-clause, paper lanterns, 3840x2059
 "enlightenment/data/backgrounds/Mountain.edj|e_Mountain"             # BSD-2-clause, snow peak at dusk, dark, 3840x2160
 "enlightenment/data/backgrounds/Peaks.edj|e_Peaks"                   # BSD-2-clause, rocky peaks at dusk, dark/low detail, 3840x2160
)
for e in "${FILES[@]}"; do
  f="${e%%|*}"; n="${e##*|}"
  "$PY" - "$B/$f" "$OUT/$n.jpg" <<'PY'
import sys, struct, cv2, numpy as np
src, dst = sys.argv[1], sys.argv[2]
if src.endswith('.edj'):
    # Edje/Eet file: lossy images are stored as plain JPEG streams, one per resolution.
    # Read each stream's SOF header and decode the largest one.
    b = open(src, 'rb').read(); best = None; i = b.find(b'\xff\xd8\xff')
    while i >= 0:
        j = i + 2
        while j + 9 < len(b) and b[j] == 0xFF:
            m = b[j + 1]; ln = struct.unpack('>H', b[j + 2:j + 4])[0]
            if m in (0xC0, 0xC1, 0xC2):
                h, w = struct.unpack('>HH', b[j + 5:j + 9])
                if best is None or w * h > best[0]: best = (w * h, i)
                break
            j += 2 + ln
        i = b.find(b'\xff\xd8\xff', i + 3)
    im = cv2.imdecode(np.frombuffer(b, np.uint8, offset=best[1]), cv2.IMREAD_COLOR)
else:
    im = cv2.imread(src, cv2.IMREAD_COLOR)
assert im is not None and im.shape[1] >= 1600, src
s = min(1.0, 1920 / im.shape[1])
if s < 1: im = cv2.resize(im, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
assert cv2.imwrite(dst, im, [cv2.IMWRITE_JPEG_QUALITY, 92]), dst
PY
done
for p in "${PKGS[@]}"; do cp "$B/doc/$p/copyright" "$OUT/COPYRIGHT.$p"; done
echo "wrote $(ls "$OUT"/*.jpg | wc -l) photos to $OUT"
