#!/usr/bin/env python3
"""A selection split for DeiT-MNIST defaults (issue 19: defaults chosen on data that is not
reported): the 2,000 MNIST test images that follow the 1,024 calibration images among those not
in the model's hold-out set, written as 28x28 grayscale PNGs with labels.tsv into DIR (default
./img). The hold-out images are recognised by their pixels, as `--calib-exclude` does. Pure
Python (zlib): no imaging library needed.

    python3 bench/deit-selection-images.py [DIR]     (reads ../shared/data)
"""
import sys
import gzip, struct, zlib, os
D=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'shared', 'data')
OUT=sys.argv[1] if len(sys.argv) > 1 else 'img'
def png_read(p):
    b=open(p,'rb').read(); assert b[:8]==b'\x89PNG\r\n\x1a\n'
    i=8; idat=b''; w=h=0; ct=None; bd=None
    while i<len(b):
        n=struct.unpack('>I',b[i:i+4])[0]; t=b[i+4:i+8]; d=b[i+8:i+8+n]; i+=12+n
        if t==b'IHDR': w,h,bd,ct=struct.unpack('>IIBB',d[:10])
        elif t==b'IDAT': idat+=d
    assert bd==8 and ct==0, (bd,ct)
    raw=zlib.decompress(idat); out=[]; prev=bytearray(w); k=0
    for y in range(h):
        f=raw[k]; row=bytearray(raw[k+1:k+1+w]); k+=1+w
        for x in range(w):
            a=row[x-1] if x else 0; up=prev[x]; c=prev[x-1] if x else 0
            if f==1: row[x]=(row[x]+a)&255
            elif f==2: row[x]=(row[x]+up)&255
            elif f==3: row[x]=(row[x]+(a+up)//2)&255
            elif f==4:
                pa=abs(up-c); pb=abs(a-c); pc=abs(a+up-2*c)
                pr=a if pa<=pb and pa<=pc else (up if pb<=pc else c)
                row[x]=(row[x]+pr)&255
        out+=row; prev=row
    return bytes(out)
def png_write(p,pix,w,h):
    raw=b''.join(b'\x00'+pix[y*w:(y+1)*w] for y in range(h))
    def chunk(t,d): return struct.pack('>I',len(d))+t+d+struct.pack('>I',zlib.crc32(t+d)&0xffffffff)
    open(p,'wb').write(b'\x89PNG\r\n\x1a\n'+chunk(b'IHDR',struct.pack('>IIBBBBB',w,h,8,0,0,0,0))+chunk(b'IDAT',zlib.compress(raw))+chunk(b'IEND',b''))
imgs=gzip.open(D+'/mnist/t10k-images-idx3-ubyte.gz').read()[16:]
labs=gzip.open(D+'/mnist/t10k-labels-idx1-ubyte.gz').read()[8:]
hold=set(png_read(os.path.join(D,'deit-mnist-holdout',f)) for f in os.listdir(D+'/deit-mnist-holdout') if f.endswith('.png'))
print('holdout', len(hold))
nonhold=[i for i in range(10000) if imgs[i*784:(i+1)*784] not in hold]
print('non-holdout', len(nonhold))
sel=nonhold[1024:1024+2000]   # after the 1024 calibration images
os.makedirs(OUT,exist_ok=True)
with open(os.path.join(OUT,'labels.tsv'),'w') as L:
    for k,i in enumerate(sel):
        png_write(os.path.join(OUT,'%04d.png'%k), imgs[i*784:(i+1)*784],28,28); L.write('%04d.png\t%d\n'%(k,labs[i]))
print('selection', len(sel))
