const fs=require('fs');
for (const f of process.argv.slice(2)) {
  const p=JSON.parse(fs.readFileSync(f));
  const byId=new Map(p.nodes.map(n=>[n.id,n]));
  const dt=new Map(); p.samples.forEach((s,i)=>dt.set(s,(dt.get(s)||0)+(p.timeDeltas[i]||0)));
  const self=new Map(); let total=0;
  for (const n of p.nodes){const t=dt.get(n.id)||0; total+=t; const cf=n.callFrame; const k=`${cf.functionName||'(anon)'} ${cf.url.split('/').slice(-2).join('/')}:${cf.lineNumber}`; self.set(k,(self.get(k)||0)+t);}
  // inclusive
  const parent=new Map(); for(const n of p.nodes) for(const c of n.children||[]) parent.set(c,n.id);
  const incl=new Map();
  for(const n of p.nodes){const t=dt.get(n.id)||0; if(!t) continue; const seen=new Set(); let id=n.id; while(id!==undefined){const m=byId.get(id); const cf=m.callFrame; const k=`${cf.functionName||'(anon)'} ${cf.url.split('/').slice(-2).join('/')}:${cf.lineNumber}`; if(!seen.has(k)){seen.add(k); incl.set(k,(incl.get(k)||0)+t);} id=parent.get(id);} }
  console.log(`== ${f.split('/').pop()} total ${(total/1e6).toFixed(2)} s`);
  console.log('-- self'); [...self].sort((a,b)=>b[1]-a[1]).slice(0,25).forEach(([k,v])=>console.log((v/1e6).toFixed(2).padStart(6),(100*v/total).toFixed(1).padStart(5)+'%',k));
  console.log('-- inclusive'); [...incl].sort((a,b)=>b[1]-a[1]).slice(0,40).forEach(([k,v])=>console.log((v/1e6).toFixed(2).padStart(6),(100*v/total).toFixed(1).padStart(5)+'%',k));
}
