#!/usr/bin/env python3
"""Writes a synthetic CAM2 camera CSV (header of CAM2 field names) to stdout.

    scripts/gen_cam2_csv.py 1000000 > /tmp/cams.csv

Deterministic (seeded). Cameras cluster around 200 cities so equality and radius filters have
realistic selectivity; one row in 10,000 is deliberately bad (latitude out of range) so the
import's skip report is exercised.
"""
import random
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
rnd = random.Random(2024)
countries = ["US", "JP", "FR", "DE", "CZ", "BR", "IN", "AU", "CA", "GB"]
states = ["IN", "CA", "TX", "NY", "WA", "IL", "FL", "OH", "GA", "PA"]
sources = ["Google", "DOT", "EarthCam", "Insecam", "Webcams.travel"]
cities = []
for i in range(200):
    cities.append((f"City{i:03d}", rnd.choice(countries), rnd.choice(states),
                   rnd.uniform(-60, 70), rnd.uniform(-180, 180)))
out = sys.stdout
out.write("camera_id,city,state,country,lat,lng,source,source_url,camera_type,description,"
          "is_video,framerate,outdoors,traffic,inactive,resolution_w,resolution_h,"
          "date_added,last_updated\n")
res = [(640, 480), (1280, 720), (1920, 1080), (3840, 2160)]
lines = []
for i in range(1, n + 1):
    city, country, state, clat, clng = cities[rnd.randrange(200)]
    lat = clat + rnd.uniform(-0.5, 0.5)
    if i % 10_000 == 0:
        lat = 123.0  # bad row
    lng = ((clng + rnd.uniform(-0.5, 0.5) + 180) % 360) - 180
    w, h = res[rnd.randrange(4)]
    video = rnd.random() < 0.6
    added = f"20{rnd.randint(10, 24):02d}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
    lines.append(
        f"{i},{city},{state},{country},{lat:.6f},{lng:.6f},{rnd.choice(sources)},"
        f"http://example.com/cam/{i},{'IP' if rnd.random() < 0.7 else 'Non_IP'},"
        f"camera {i} in {city},{video},{rnd.choice([1, 5, 15, 25, 30]) if video else 0},"
        f"{rnd.random() < 0.8},{rnd.random() < 0.3},{rnd.random() < 0.05},{w},{h},"
        f"{added},{added}\n")
    if len(lines) >= 10_000:
        out.write("".join(lines))
        lines.clear()
out.write("".join(lines))
