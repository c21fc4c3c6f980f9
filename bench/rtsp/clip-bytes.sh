#!/bin/bash
# Usage: LOOKOUT=target/release/lookout bench/rtsp/clip-bytes.sh (from the repository root).
# A 1080p15 main + 640x360 substream camera of the walkers; lookout records MP4 clips; compare clip bytes per second with the stream's bitrate.
set -e
D=$(mktemp -d)
/usr/bin/python3 scripts/rtsp-server --port 0 --main 1920x1080@15 --sub 640x360@10 --file testdata/footage/vtest.avi > $D/rs.out 2>$D/rs.err < <(sleep 200) &
RS=$!
for i in $(seq 50); do grep -q ready $D/rs.out 2>/dev/null && break; sleep 0.2; done
M=$(awk '{print $2}' $D/rs.out); S=$(awk '{print $3}' $D/rs.out)
printf '[settings]\nclip_max_s = 30\nperson_check = false\n' > $D/l.toml
${LOOKOUT:-target/release/lookout} --config $D/l.toml --source "$M" --detect-source "$S" --listen 127.0.0.1:18095 --data-dir $D/data > $D/lk.log 2>&1 &
LK=$!
sleep 75
curl -s localhost:18095/status | python3 -c "import json,sys; d=json.load(sys.stdin); print('main stream kbit/s', d['main_source']['stream']['bitrate_kbps'])"
curl -s localhost:18095/clips | python3 -c "
import json,sys; d=json.load(sys.stdin)
for c in d.get('clips',d if isinstance(d,list) else []):
    print(c.get('name'), c.get('bytes'), c.get('duration_s'), 'kbit/s', round(c['bytes']*8/c['duration_s']/1000) if c.get('duration_s') else None)
" 
for f in $D/data/clips/cam/motion-*.mp4; do ffprobe -v error -show_entries format=duration,size,bit_rate -show_entries stream=codec_name,width,height $f | tr '\n' ' '; echo; done
kill $LK; kill $RS; sleep 1; rm -rf $D
