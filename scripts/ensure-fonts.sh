#!/usr/bin/env bash
# Report cards (PDF) are typeset with Noto Sans and Noto Naskh Arabic from Debian's fonts-noto-core.
set -euo pipefail
if [ ! -f /usr/share/fonts/truetype/noto/NotoNaskhArabic-Regular.ttf ]; then
  echo "ensure-fonts: installing fonts-noto-core (Arabic and Latin fonts for report cards)" >&2
  if [ "$(id -u)" = 0 ]; then runner=(); else runner=(sudo); fi
  "${runner[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${runner[@]}" apt-get install -y -qq fonts-noto-core >&2
fi
