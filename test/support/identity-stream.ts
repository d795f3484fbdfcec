import { exampleBehaviours, generatePlantedStream } from '../../functions/cli/planted-stream';

/** The planted stream, with anonymous visits before some users identify and aliases between others. */
export function messagesWithIdentities() {
  const stream = generatePlantedStream({ seed: 5, users: 250, accounts: 20, days: 45, behaviours: exampleBehaviours, baseRate: 0.05 });
  const extra: object[] = [];
  stream.users.forEach((user, index) => {
    const first = Date.parse(user.firstSeen);
    if (index % 7 === 0) {
      const anonymousId = `anon-${user.id}`;
      extra.push({ type: 'page', anonymousId, name: 'Pricing', timestamp: new Date(first - 3 * 86_400_000).toISOString(), messageId: `x-${index}-1` });
      extra.push({ type: 'track', anonymousId, event: 'Dashboard Shared', timestamp: new Date(first - 2 * 86_400_000).toISOString(), messageId: `x-${index}-2` });
      extra.push({ type: 'identify', userId: user.id, anonymousId, traits: {}, timestamp: new Date(first + 5 * 86_400_000).toISOString(), messageId: `x-${index}-3` });
    }
    if (index % 11 === 0 && index + 1 < stream.users.length) {
      extra.push({ type: 'alias', userId: stream.users[index + 1]!.id, previousId: user.id, timestamp: new Date(first + 9 * 86_400_000).toISOString(), messageId: `x-${index}-4` });
    }
    // An account's traits change through one member's group call, under the others who send nothing then.
    if (index % 17 === 0 && user.accountId !== null) {
      extra.push({ type: 'group', userId: user.id, groupId: user.accountId, traits: { employees: 1000 }, timestamp: new Date(first + 20 * 86_400_000).toISOString(), messageId: `x-${index}-6` });
    }
    if (index % 13 === 0) extra.push({ type: 'page', anonymousId: `lone-${index}`, timestamp: new Date(first).toISOString(), messageId: `x-${index}-5` });
  });
  return [...stream.messages, ...extra];
}

